import type { X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ToolError } from '../errors.js';
import { loadCertificate, verifyHex } from '../crypto/keys.js';
import { MAX_MANIFEST_BYTES, parseManifest, type SignedManifest } from '../format/manifest.js';
import type { PartStore } from '../store/part-store.js';

/**
 * The bytes of a local manifest file, read with a bound: a regular file (after following a symlink; a FIFO or a
 * device is refused at once, never waited on) of at most MAX_MANIFEST_BYTES. `describe` words the error line.
 */
export async function readManifestBytes(path: string, describe = (why: string) => `cannot read manifest ${path}: ${why}`): Promise<Buffer> {
  const fail = (why: string, cause?: unknown, code: 'IO_ERROR' | 'MANIFEST_INVALID' = 'IO_ERROR') =>
    new ToolError(describe(why), { cause, code });
  let file;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it makes no difference to a regular file.
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw fail(code === 'ENOENT' ? 'file not found'
      : code === 'EISDIR' ? 'it is a directory, not a manifest file'
      : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
      : (err as Error).message, err);
  }
  try {
    const st = await file.stat();
    if (!st.isFile()) throw fail('it is not a regular file', undefined, 'MANIFEST_INVALID');
    const tooBig = () => fail(`it is over ${MAX_MANIFEST_BYTES >> 20} MiB, which no manifest is`, undefined, 'MANIFEST_INVALID');
    if (st.size > MAX_MANIFEST_BYTES) throw tooBig();
    // Read to the end, but never past the bound: the file may have grown since the stat.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead, buffer } = await file.read(Buffer.alloc(1 << 16), 0, 1 << 16, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_MANIFEST_BYTES) throw tooBig();
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total);
  } catch (err) {
    if (err instanceof ToolError) throw err;
    throw fail((err as Error).message, err);
  } finally {
    await file.close();
  }
}

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
