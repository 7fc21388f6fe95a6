import { createDecipheriv } from 'node:crypto';
import { Readable } from 'node:stream';
import { constants, createGunzip } from 'node:zlib';
import { ToolError } from '../errors.js';
import { unwrapBundleKey } from '../crypto/key-envelope.js';
import { loadPrivateKey } from '../crypto/keys.js';
import { DETECT_BYTES, detectVirtualization, type Detection } from '../format/disk-detect.js';
import type { Manifest } from '../format/manifest.js';
import { firstMemberHead } from '../format/tar-member-head.js';
import { expectedPartSizes, readVerifiedPart, type PartStore } from '../store/part-store.js';
import { readRange } from '../store/regular-file.js';

/** Tar bytes enough for the member's headers (a long name, sparse extension blocks, pax records) and its first sectors. */
const TAR_PREFIX = 64 << 10;
/** At most this much of the first part is decrypted: far more than gzip needs for TAR_PREFIX bytes of any image. */
const CIPHER_PREFIX = 1 << 20;
const SLICE = 16 << 10;

/** The virtualization type of an image file, from its first sectors (what the bundling commands look at). */
export async function detectImageFileVirtualization(path: string): Promise<Detection> {
  try {
    return detectVirtualization(await readRange(path, 0, DETECT_BYTES));
  } catch (err) {
    throw new ToolError(`cannot read image ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err, code: 'IO_ERROR' });
  }
}

/**
 * The first `want` bytes of a bundled image, from the start of its first part only: the part is read bounded and its
 * SHA-1 checked as always, then at most its first MiB is decrypted (AES-128-CBC with the key and IV the private key
 * unwraps from the manifest), decompressed until TAR_PREFIX bytes of tar have come out, and the tar headers skipped.
 * Undefined when those bytes do not reach that far.
 */
export async function bundledImageHead(o: { manifest: Manifest; source: PartStore; privateKeyPath: string; want?: number }): Promise<Buffer | undefined> {
  const { manifest } = o;
  const first = manifest.parts[0];
  if (!first) return undefined;
  const { key, iv } = unwrapBundleKey(manifest, loadPrivateKey(o.privateKeyPath), o.privateKeyPath);
  const { data } = await readVerifiedPart(o.source, first, expectedPartSizes(manifest, o.source.location)[0]!);
  const decipher = createDecipheriv('aes-128-cbc', key, iv).setAutoPadding(false);
  const cipherText = data.subarray(0, Math.min(data.length - (data.length % 16), CIPHER_PREFIX));
  function* plain(): Generator<Buffer> {
    for (let i = 0; i < cipherText.length; i += SLICE) yield decipher.update(cipherText.subarray(i, i + SLICE));
  }
  // A truncated gzip stream is expected here: SYNC_FLUSH gives what the input holds instead of an error.
  const gunzip = createGunzip({ finishFlush: constants.Z_SYNC_FLUSH });
  const source = Readable.from(plain());
  source.pipe(gunzip);
  const out: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      out.push(chunk);
      n += chunk.length;
      if (n >= TAR_PREFIX) break;
    }
  } catch (err) {
    // Past a complete gzip member (a one-part bundle) come the cipher's padding bytes; what came before counts.
    if (n === 0) {
      throw new ToolError(`the first part of the bundle does not decrypt to gzip data with the key in its manifest (${(err as Error).message}); is ${o.privateKeyPath} the key the bundle was made for?`, { cause: err, code: 'DECRYPT_FAILED' });
    }
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  return firstMemberHead(Buffer.concat(out).subarray(0, TAR_PREFIX), o.want ?? DETECT_BYTES)?.head;
}

/** The virtualization type of a bundled image, from the first sectors bundledImageHead() gives. */
export async function detectBundleVirtualization(o: { manifest: Manifest; source: PartStore; privateKeyPath: string }): Promise<Detection> {
  const head = await bundledImageHead(o);
  if (!head) return { reason: "the start of the bundle's first part does not reach the image's first sectors" };
  return detectVirtualization(head);
}
