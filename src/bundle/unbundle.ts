import { createDecipheriv } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ToolError } from '../errors.js';
import { unwrapBundleKey } from '../crypto/key-envelope.js';
import { loadPrivateKey } from '../crypto/keys.js';
import type { EventHandler } from '../events.js';
import { createPartSource } from '../store/part-source.js';
import { expectedPartSizes, type PartStore } from '../store/part-store.js';
import { DigestTap } from '../stream/digest-tap.js';
import { sweepStaleTemporaries } from '../stream/atomic-write.js';
import { TarExtract } from '../stream/tar-extract.js';
import { loadManifest, type ManifestSource } from './manifest-file.js';

export interface UnbundleOptions {
  /** The manifest: a local file, or its name in the store. */
  manifest: ManifestSource;
  /** Where the parts are: a DirectoryStore or an S3Store. */
  store: PartStore;
  privateKeyPath: string;
  /** The directory the image is written into. */
  destination: string;
  /** Verify the manifest's signature with this certificate first. */
  certPath?: string;
  /** Parts read ahead of the one being unpacked, so reading overlaps the rest (default 0: each costs 10 MiB; more for a remote store). */
  prefetch?: number;
  onEvent?: EventHandler;
  /** Stops the work: the files extracted so far are removed, and the promise rejects. */
  signal?: AbortSignal;
}

/**
 * Unbundles in one pass: parts (each bounded and SHA-1 checked) → AES-128-CBC → gunzip → SHA-1 of the tar → extract
 * under temporary names; the files get their final names only when the tar digest matches the manifest.
 */
export async function unbundle(o: UnbundleOptions): Promise<{ files: string[] }> {
  const { manifest, source } = await loadManifest(o.manifest, o.store, o.certPath);
  const sizes = expectedPartSizes(manifest, source);
  // A missing, special or wrong-sized local part stops us before anything is written.
  await o.store.precheck?.(manifest.parts.map((p, i) => ({ name: p.filename, size: sizes[i]! })));
  const { key, iv } = unwrapBundleKey(manifest, loadPrivateKey(o.privateKeyPath), o.privateKeyPath);
  const tap = new DigestTap(o.onEvent && ((n) => o.onEvent!({ type: 'progress', bytes: n, totalBytes: manifest.size })));
  await sweepStaleTemporaries(o.destination);
  // The manifest's <size> bounds what the tar stream may restore.
  const extract = new TarExtract({ directory: o.destination, imageSize: manifest.size });
  const decipher = createDecipheriv('aes-128-cbc', key, iv);
  try {
    await pipeline(createPartSource(o.store, manifest, source, o.prefetch ?? 0), decipher, createGunzip({ chunkSize: 1 << 20 }), tap, extract, { signal: o.signal }).catch((err: Error & { code?: string }) => {
      if (err.code === 'ERR_OSSL_BAD_DECRYPT') throw new ToolError('decryption failed: the bundle does not decrypt with the key in its manifest (parts from another bundle?)', { code: 'DECRYPT_FAILED' });
      if (err.code?.startsWith('Z_')) throw new ToolError(`the decrypted bundle is not valid gzip data (${err.message}); parts from another bundle?`, { code: 'DECRYPT_FAILED' });
      throw err;
    });
    if (tap.digest() !== manifest.digest.toLowerCase()) {
      throw new ToolError(`the unbundled image's tar digest ${tap.digest()} does not match the manifest's ${manifest.digest}`, { code: 'IMAGE_DIGEST_MISMATCH' });
    }
    const files = await extract.commit();
    return { files: files.map((f) => f.path) };
  } catch (err) {
    await extract.abort();
    throw err;
  }
}
