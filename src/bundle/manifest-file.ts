import { ToolError } from '../errors.js';
import { loadCertificate, verifyHex } from '../crypto/keys.js';
import { parseManifest, signedSubstring, type Manifest } from '../format/manifest.js';
import { readSmallFile } from '../stream/regular-file.js';

/**
 * The most a manifest may hold. Real ones take a few KB (about 120 bytes a part); 1 MiB holds over 2,700 parts (27 GiB)
 * even with 255-byte names, well past EC2's 10 GiB image limit, and keeps a hostile one from filling memory.
 */
export const MAX_MANIFEST_BYTES = 1 << 20;

/** Reads a local manifest file; with a certificate, its signature must verify over the exact signed text on disk. */
export async function readManifest(path: string, certPath?: string): Promise<Manifest & { signature: string }> {
  const xml = (await readSmallFile(path, MAX_MANIFEST_BYTES, 'manifest')).toString('utf8');
  const manifest = parseManifest(xml, path);
  if (certPath) {
    const cert = loadCertificate(certPath);
    if (!verifyHex(cert, signedSubstring(xml), manifest.signature)) {
      throw new ToolError(`manifest ${path} fails authentication with ${certPath}: it was altered or signed by another key`);
    }
  }
  return manifest;
}
