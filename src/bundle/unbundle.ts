import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ToolError } from '../errors.js';
import { decryptWithKey, loadPrivateKey } from '../crypto/keys.js';
import type { Manifest, ManifestPart } from '../format/manifest.js';
import { ThreadedDigestTap } from '../stream/threaded-digest-tap.js';
import { createPartSource, type OpenPart } from '../stream/part-source.js';
import { TarExtract } from '../stream/tar-extract.js';
import { createThreadedDecipher } from '../stream/threaded-cipher.js';
import { PART_SIZE } from '../format/part-name.js';
import { readManifest } from './manifest-file.js';

export interface UnbundleOptions {
  manifestPath: string;
  privateKeyPath: string;
  sourceDir: string;
  destination: string;
  certPath?: string;
  onProgress?: (bytes: number, total: number) => void;
}

/** The AES key and IV of a bundle as 32-digit hex, decrypted from the manifest's user copies. */
export function decryptBundleKey(manifest: Manifest, privateKey: KeyObject, keyPath?: string): { keyHex: string; ivHex: string } {
  const hex = (field: string, what: string): string => {
    const text = decryptWithKey(privateKey, field, what, keyPath);
    if (!/^[0-9a-fA-F]{32}$/.test(text)) throw new ToolError(`the manifest's ${what} does not decrypt to a 128-bit value as 32 hex digits; is ${keyPath ?? 'the key'} the right key?`);
    return text;
  };
  return { keyHex: hex(manifest.userEncryptedKey, 'user_encrypted_key'), ivHex: hex(manifest.userEncryptedIv, 'user_encrypted_iv') };
}

const READ_CHUNK = 1 << 20;

/** Up to PART_SIZE bytes of a file, read ahead; the rest, if any (not a part of ours), is streamed when used. */
function readAhead(path: string): Promise<Readable> {
  const read = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK, end: PART_SIZE - 1 })) chunks.push(chunk as Buffer);
    return chunks;
  })();
  const part = read.then((chunks) => {
    const full = chunks.reduce((n, c) => n + c.length, 0) === PART_SIZE;
    return Readable.from((async function* () {
      yield* chunks;
      if (full) yield* createReadStream(path, { highWaterMark: READ_CHUNK, start: PART_SIZE });
    })(), { objectMode: false });
  });
  part.catch(() => undefined); // a failure is reported when the part is opened, if it ever is
  return part;
}

/**
 * Opens parts from a local directory. Given the manifest's parts, it reads the next part while this one is used, so
 * that reading overlaps decrypting, inflating and writing (one part, 10 MiB, more in memory).
 */
export function partsFromDirectory(dir: string, parts?: ManifestPart[]): OpenPart {
  if (!parts) return (part) => createReadStream(join(dir, part.filename), { highWaterMark: READ_CHUNK });
  let ahead: { index: number; part: Promise<Readable> } | undefined;
  const start = (index: number) => ({ index, part: readAhead(join(dir, parts[index]!.filename)) });
  return (_part, index) => {
    const current = ahead?.index === index ? ahead : start(index);
    ahead = index + 1 < parts.length ? start(index + 1) : undefined;
    return current.part;
  };
}

/**
 * Unbundles in one pass: parts (each SHA-1 checked) → AES-128-CBC → gunzip → SHA-1 of the tar → extract under
 * temporary names; the files get their final names only when the tar digest matches the manifest.
 */
export async function unbundle(o: UnbundleOptions, openPart?: OpenPart): Promise<{ files: string[] }> {
  const manifest = await readManifest(o.manifestPath, o.certPath);
  openPart ??= partsFromDirectory(o.sourceDir, manifest.parts);
  const { keyHex, ivHex } = decryptBundleKey(manifest, loadPrivateKey(o.privateKeyPath), o.privateKeyPath);
  const tap = new ThreadedDigestTap(o.onProgress && ((n) => o.onProgress!(n, manifest.size)));
  const extract = new TarExtract({ directory: o.destination });
  const decipher = createThreadedDecipher(Buffer.from(keyHex, 'hex'), Buffer.from(ivHex, 'hex'));
  try {
    await pipeline(createPartSource(manifest.parts, openPart), decipher, createGunzip({ chunkSize: 1 << 20 }), tap, extract).catch((err: Error & { code?: string }) => {
      if (err.code === 'ERR_OSSL_BAD_DECRYPT') throw new ToolError('decryption failed: the bundle does not decrypt with the key in its manifest (parts from another bundle?)');
      if (err.code?.startsWith('Z_')) throw new ToolError(`the decrypted bundle is not valid gzip data (${err.message}); parts from another bundle?`);
      throw err;
    });
    if (tap.digest() !== manifest.digest.toLowerCase()) {
      throw new ToolError(`the unbundled image's tar digest ${tap.digest()} does not match the manifest's ${manifest.digest}`);
    }
    const files = await extract.commit();
    return { files: files.map((f) => f.path) };
  } catch (err) {
    await extract.abort();
    throw err;
  }
}
