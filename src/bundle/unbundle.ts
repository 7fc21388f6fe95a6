import { createDecipheriv } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AmiToolsError, InterruptedError, ToolError } from '../errors.js';
import { unwrapBundleKey } from '../crypto/key-envelope.js';
import { loadPrivateKey } from '../crypto/keys.js';
import type { EventHandler } from '../events.js';
import { createPartSource } from '../store/part-source.js';
import { expectedPartSizes, type PartStore } from '../store/part-store.js';
import { DigestTap } from '../stream/digest-tap.js';
import { GzipMember } from '../stream/gzip-member.js';
import { sweepStaleTemporaries } from '../stream/atomic-write.js';
import { TarExtract, type ExtractedFile } from '../stream/tar-extract.js';
import type { ImageSink } from '../stream/image-sink.js';
import { loadManifest, type ManifestSource } from './manifest-file.js';
import type { SignedManifest } from '../format/manifest.js';

export interface UnbundleOptions {
  /** The manifest: a local file, or its name in the store. */
  manifest: ManifestSource;
  /** Where the parts are: a DirectoryStore or an S3Store. */
  store: PartStore;
  privateKeyPath: string;
  /** The directory the image is written into, under its member name; or, instead: */
  destination?: string;
  /**
   * Opens where the image's bytes go (e.g. openImageSink for a file, a block device or stdout), given the manifest's
   * image size, once the manifest and key have been checked and before any part is read. The bundle must then hold
   * exactly one regular file.
   */
  sink?: (imageSize: number) => Promise<ImageSink>;
  /** Verify the manifest's signature with this certificate first. */
  certPath?: string;
  /** Parts read ahead of the one being unpacked, so reading overlaps the rest (default 0: each costs 10 MiB; S3_PREFETCH for S3). */
  prefetch?: number;
  onEvent?: EventHandler;
  /** Stops the work: the files extracted so far are removed, and the promise rejects. */
  signal?: AbortSignal;
}

/**
 * Parts read ahead from S3: one request in flight while a part is unpacked. Each costs 10 MiB; measured on a 1 GiB
 * image against s3rver, two ahead peaked at up to 189 MB resident, too near the 200 MB budget; one ahead at 173 MB.
 */
export const S3_PREFETCH = 1;

/**
 * Unbundles in one pass: parts (each bounded and SHA-1 checked) → AES-128-CBC → inflate → SHA-1 of the tar → extract
 * under temporary names; the files get their final names only when the tar digest matches the manifest.
 */
export async function unbundle(o: UnbundleOptions): Promise<{ files: string[]; extracted: ExtractedFile[]; manifest: SignedManifest }> {
  if ((o.destination === undefined) === (o.sink === undefined)) throw new TypeError('unbundle needs a destination or a sink, not both');
  const { manifest, source } = await loadManifest(o.manifest, o.store, o.certPath);
  const sizes = expectedPartSizes(manifest, source);
  // A missing, special or wrong-sized local part stops us before anything is written.
  await o.store.precheck?.(manifest.parts.map((p, i) => ({ name: p.filename, size: sizes[i]! })));
  const { key, iv } = unwrapBundleKey(manifest, loadPrivateKey(o.privateKeyPath), o.privateKeyPath);
  const tap = new DigestTap(o.onEvent && ((n) => o.onEvent!({ type: 'progress', bytes: n, totalBytes: manifest.size })));
  if (o.destination !== undefined) await sweepStaleTemporaries(o.destination);
  const sink = o.sink && watched(await o.sink(manifest.size));
  // The manifest's <size> bounds what the tar stream may restore.
  const extract = new TarExtract({ directory: o.destination, sink, imageSize: manifest.size });
  const decipher = createDecipheriv('aes-128-cbc', key, iv);
  // 2 MiB inflate jobs: as fast as 4 MiB ones, 10-35 MB less peak RSS (each job's output is a new buffer).
  const gzip = new GzipMember({ chunkSize: 2 << 20, readableHighWaterMark: 2 << 20 });
  try {
    await pipeline(createPartSource(o.store, manifest, source, o.prefetch ?? 0, decipher), ...gzip.stages, takeLater(), tap, extract, { signal: o.signal })
      .then(() => gzip.check(tap.bytes))
      .catch((failure: Error) => {
        const err = gzip.explain(failure) as Error & { code?: string };
        if (err.code === 'ERR_OSSL_BAD_DECRYPT') throw new ToolError('decryption failed: the bundle does not decrypt with the key in its manifest (parts from another bundle?)', { code: 'DECRYPT_FAILED' });
        if (err.code?.startsWith('Z_')) throw new ToolError(`the decrypted bundle is not valid gzip data (${err.message}); parts from another bundle?`, { code: 'DECRYPT_FAILED' });
        throw err;
      });
    if (tap.digest() !== manifest.digest.toLowerCase()) {
      throw new ToolError(`the unbundled image's tar digest ${tap.digest()} does not match the manifest's ${manifest.digest}`, { code: 'IMAGE_DIGEST_MISMATCH' });
    }
    const files = await extract.commit();
    return { files: files.map((f) => f.path), extracted: files, manifest };
  } catch (err) {
    await extract.abort();
    throw sink?.touched && !sink.revocable ? invalidOutput(err, sink.name, o.signal) : err;
  }
}

/**
 * Hands zlib's output on in a later tick instead of inside zlib's callback, so the next inflate job is queued to the
 * thread pool before the main thread hashes and writes what came out: inflating and the rest overlap. A Transform
 * holds one chunk, where an async generator stage would queue 16 (32 MiB) while inflating runs ahead.
 */
function takeLater(): Transform {
  return new Transform({ transform: (chunk: Buffer, _enc, cb) => process.nextTick(cb, null, chunk) });
}

/** A sink that remembers whether anything was written to it. */
function watched(sink: ImageSink): ImageSink & { touched: boolean } {
  const w = {
    name: sink.name, revocable: sink.revocable, touched: false,
    write: (data: Buffer, offset: number) => { w.touched = true; return sink.write(data, offset); },
    finish: (size: number, attrs?: Parameters<ImageSink['finish']>[1]) => { w.touched = true; return sink.finish(size, attrs); },
    abort: () => sink.abort(),
  };
  return w;
}

/** A failure after bytes went to a device or a stream, which cannot take them back: the error says they are invalid. */
function invalidOutput(err: unknown, name: string, signal?: AbortSignal): Error {
  const what = `the image written to ${name} is incomplete or invalid: do not use it`;
  if (signal?.aborted) return new InterruptedError(what, { cause: err });
  if (err instanceof AmiToolsError) return new ToolError(`${err.message}; ${what}`, { code: err.code, cause: err });
  return new ToolError(`${err instanceof Error ? err.message : String(err)}; ${what}`, { cause: err });
}
