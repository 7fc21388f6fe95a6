import { readFile } from 'node:fs/promises';
import { ToolError } from '../errors.js';
import { loadCertificate, verifyHex } from '../crypto/keys.js';
import { parseManifest, signedSubstring, type Manifest } from '../format/manifest.js';

/** Reads a local manifest file; with a certificate, its signature must verify over the exact signed text on disk. */
export async function readManifest(path: string, certPath?: string): Promise<Manifest & { signature: string }> {
  let xml: string;
  try {
    xml = await readFile(path, 'utf8');
  } catch (err) {
    throw new ToolError(`cannot read manifest ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const manifest = parseManifest(xml, path);
  if (certPath) {
    const cert = loadCertificate(certPath);
    if (!verifyHex(cert, signedSubstring(xml), manifest.signature)) {
      throw new ToolError(`manifest ${path} fails authentication with ${certPath}: it was altered or signed by another key`);
    }
  }
  return manifest;
}
