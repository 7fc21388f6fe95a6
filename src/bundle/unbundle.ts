import { createDecipheriv, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ToolError } from '../errors.js';
import { decryptWithKey, loadPrivateKey } from '../crypto/keys.js';
import type { Manifest } from '../format/manifest.js';
import { ThreadedDigestTap } from '../stream/threaded-digest-tap.js';
import { createPartSource, type OpenPart } from '../stream/part-source.js';
import { TarExtract } from '../stream/tar-extract.js';
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

/** Opens parts from a local directory. */
export function partsFromDirectory(dir: string): OpenPart {
  return (part) => createReadStream(join(dir, part.filename), { highWaterMark: 1 << 20 });
}

/**
 * Unbundles in one pass: parts (each SHA-1 checked) → AES-128-CBC → gunzip → SHA-1 of the tar → extract under
 * temporary names; the files get their final names only when the tar digest matches the manifest.
 */
export async function unbundle(o: UnbundleOptions, openPart: OpenPart = partsFromDirectory(o.sourceDir)): Promise<{ files: string[] }> {
  const manifest = await readManifest(o.manifestPath, o.certPath);
  const { keyHex, ivHex } = decryptBundleKey(manifest, loadPrivateKey(o.privateKeyPath), o.privateKeyPath);
  const tap = new ThreadedDigestTap(o.onProgress && ((n) => o.onProgress!(n, manifest.size)));
  const extract = new TarExtract({ directory: o.destination });
  const decipher = createDecipheriv('aes-128-cbc', Buffer.from(keyHex, 'hex'), Buffer.from(ivHex, 'hex'));
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
