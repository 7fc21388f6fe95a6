import type { X509Certificate } from 'node:crypto';
import { ToolError } from '../errors.js';
import { loadCertificate, verifyHex } from '../crypto/keys.js';
import { parseManifest, type SignedManifest } from '../format/manifest.js';
import { readManifestBytes } from '../store/regular-file.js';

export { readManifestBytes };
import type { PartStore } from '../store/part-store.js';


/**
 * Whether the manifest's signature verifies with `cert` over exactly the text of the <machine_configuration> and
 * <image> elements the parser read: the one rule for every command that checks a signature.
 */
export function signatureVerifies(manifest: SignedManifest, cert: X509Certificate): boolean {
  return verifyHex(cert, manifest.signedText, manifest.signature);
}

/** Reads a local manifest file; with a certificate, its signature must verify (see signatureVerifies). */
export async function readManifest(path: string, certPath?: string): Promise<SignedManifest> {
  return checkManifest(await readManifestBytes(path), path, certPath);
}

/** Parses a manifest's bytes; with a certificate, its signature must verify (see signatureVerifies). */
export function checkManifest(data: Buffer, source: string, certPath?: string): SignedManifest {
  const manifest = parseManifest(data, source);
  if (certPath && !signatureVerifies(manifest, loadCertificate(certPath))) {
    throw new ToolError(`manifest ${source} fails authentication with ${certPath}: it was altered or signed by another key`, { code: 'SIGNATURE_MISMATCH' });
  }
  return manifest;
}

/** Where a bundle's manifest is: a local file, or an object beside the parts in a store. */
export type ManifestSource = { path: string } | { name: string };

/** Reads and checks a manifest from a file or from the store; returns it with its bytes and where it came from. */
export async function loadManifest(from: ManifestSource, store: PartStore, certPath?: string): Promise<{ manifest: SignedManifest; data: Buffer; source: string }> {
  const source = 'path' in from ? from.path : `${store.location}${store.location.endsWith('/') ? '' : '/'}${from.name}`;
  const data = 'path' in from ? await readManifestBytes(from.path) : await store.readManifest(from.name);
  return { manifest: checkManifest(data, source, certPath), data, source };
}
