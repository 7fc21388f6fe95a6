import { ToolError } from '../errors.js';
import { loadCertificate, verifyHex } from '../crypto/keys.js';
import { parseManifest, signedSubstring, type Manifest } from '../format/manifest.js';
import { readRegularFile } from '../store/directory-store.js';
import { MAX_MANIFEST_BYTES, type PartStore } from '../store/part-store.js';

export type ParsedManifest = Manifest & { signature: string };

/** Parses a manifest's text; with a certificate, its signature must verify over the exact signed text. */
export function checkManifest(xml: string, source: string, certPath?: string): ParsedManifest {
  const manifest = parseManifest(xml, source);
  if (certPath) {
    const cert = loadCertificate(certPath);
    if (!verifyHex(cert, signedSubstring(xml), manifest.signature)) {
      throw new ToolError(`manifest ${source} fails authentication with ${certPath}: it was altered or signed by another key`, { code: 'SIGNATURE_MISMATCH' });
    }
  }
  return manifest;
}

/** Reads a local manifest file (a regular file, bounded) and checks it. */
export async function readManifest(path: string, certPath?: string): Promise<ParsedManifest> {
  const data = await readRegularFile(path, { max: MAX_MANIFEST_BYTES, what: 'manifest' });
  return checkManifest(data.toString('utf8'), path, certPath);
}

/** Where a bundle's manifest is: a local file, or an object beside the parts in a store. */
export type ManifestSource = { path: string } | { name: string };

/** Reads and checks a manifest from a file or from the store; returns it with its text and where it came from. */
export async function loadManifest(from: ManifestSource, store: PartStore, certPath?: string): Promise<{ manifest: ParsedManifest; xml: string; source: string }> {
  const source = 'path' in from ? from.path : `${store.location}${store.location.endsWith('/') ? '' : '/'}${from.name}`;
  const data = 'path' in from ? await readRegularFile(from.path, { max: MAX_MANIFEST_BYTES, what: 'manifest' }) : await store.readManifest(from.name);
  const xml = data.toString('utf8');
  return { manifest: checkManifest(xml, source, certPath), xml, source };
}
