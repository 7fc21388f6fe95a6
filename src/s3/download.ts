import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ToolError, UsageError } from '../errors.js';
import { loadPrivateKey } from '../crypto/keys.js';
import { decryptLegacyManifest, isLegacyEncryptedManifest } from '../format/legacy-manifest.js';
import { parseManifest, type ManifestPart } from '../format/manifest.js';
import { DigestTap } from '../stream/digest-tap.js';
import { tempPathBeside, writeFileAtomically } from '../stream/atomic-write.js';
import type { S3Target } from './client.js';
import { checkPartLayout, isPlainFileName, partLength } from '../format/part-name.js';
import { ioError } from '../io-errors.js';
import { LengthCap, partLengthError } from '../stream/length-cap.js';
import { runPool } from './pool.js';
import { s3Call } from './upload.js';

// A manifest takes a few KB (about 120 bytes a part); 1 MiB holds over 2,700 parts even with 255-byte names.
const MAX_MANIFEST_BYTES = 1 << 20;

export interface DownloadOptions {
  target: S3Target;
  manifestName: string;          // object name under the key prefix, e.g. image.manifest.xml
  directory: string;             // must exist
  privateKeyPath?: string;       // only for a legacy encrypted manifest
  line?: (text: string) => void;
  warn?: (text: string) => void;
  progress?: (doneBytes: number, totalBytes: number, partsDone: number, partsTotal: number) => void;
}

/** Destroys the stream when no byte has come for `ms`: a stalled body must not hang the download. */
function idleWatchdog(ms: number, what: string): Transform {
  let timer: NodeJS.Timeout;
  const t: Transform = new Transform({
    transform(chunk, _enc, cb) { timer.refresh(); cb(null, chunk); },
    flush(cb) { clearTimeout(timer); cb(); },
    destroy(err, cb) { clearTimeout(timer); cb(err); },
  });
  timer = setTimeout(() => t.destroy(Object.assign(new Error(`no data for ${ms / 1000}s while reading ${what}`), { name: 'TimeoutError' })), ms);
  return t;
}

async function fetchManifest(o: DownloadOptions): Promise<string> {
  const { target } = o;
  const key = target.keyPrefix + o.manifestName;
  const data = await s3Call(target, { action: 'GetObject', key }, async () => {
    const out = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
    const tooLarge = () => Object.assign(new ToolError(`s3://${target.bucket}/${key} is over ${MAX_MANIFEST_BYTES} bytes: not a manifest`, { code: 'MANIFEST_INVALID' }), { retryable: false });
    const body = out.Body as Readable;
    if ((out.ContentLength ?? 0) > MAX_MANIFEST_BYTES) { body.destroy(); throw tooLarge(); }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of body) {
      n += (c as Buffer).length;
      if (n > MAX_MANIFEST_BYTES) { body.destroy(); throw tooLarge(); }
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  });
  if (!isLegacyEncryptedManifest(data)) return data.toString('utf8');
  if (!o.privateKeyPath) throw new ToolError(`manifest s3://${target.bucket}/${key} is encrypted (legacy format): pass the private key with -k/--privatekey`);
  o.line?.('Decrypting manifest ...');
  return decryptLegacyManifest(data, loadPrivateKey(o.privateKeyPath), `s3://${target.bucket}/${key}`);
}

/**
 * GETs one part into a temp file, checking its SHA-1 as it streams; renamed to its name only when it matches. No
 * more than `length` bytes (what bundled_size gives the part) are read or written: a longer body is refused at once.
 */
async function downloadPart(o: DownloadOptions, part: ManifestPart, length: number, onBytes: (n: number) => void): Promise<number> {
  const { target } = o;
  const key = target.keyPrefix + part.filename;
  const final = join(o.directory, part.filename);
  let mismatches = 0;
  return s3Call(target, { action: 'GetObject', key }, async () => {
    const tmp = tempPathBeside(final);
    let counted = 0;
    try {
      const out = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }));
      // Not retried: the object itself is wrong, and a hostile endpoint must not get to send it twice.
      const tooLong = (actual: string) => Object.assign(
        partLengthError(`part ${part.filename} (s3://${target.bucket}/${key})`, actual, length, 'upload the bundle again'), { retryable: false });
      if (out.ContentLength !== undefined && out.ContentLength > length) {
        (out.Body as Readable).destroy();
        throw tooLong(`${out.ContentLength} bytes long`);
      }
      const tap = new DigestTap((total) => { onBytes(total - counted); counted = total; });
      const cap = new LengthCap(length, () => tooLong(`over ${length} bytes long`));
      const file = createWriteStream(tmp, { flags: 'wx' });
      let fileError: unknown;
      file.once('error', (err) => { fileError = err; });
      await pipeline(out.Body as Readable, idleWatchdog(target.timeoutMs, key), cap, tap, file)
        .catch((err: unknown) => { throw err === fileError ? ioError(err, final, 'write') : err; });
      const digest = tap.digest();
      if (digest !== part.digest.toLowerCase()) {
        mismatches++;
        // A mismatch is retried once (a bad transfer), then reported (a bad object).
        throw Object.assign(new ToolError(`part ${part.filename} (s3://${target.bucket}/${key}) is corrupt: its SHA-1 is ${digest} but the manifest says ${part.digest}${mismatches > 1 ? ' (twice)' : ''}; upload the bundle again`), { retryable: mismatches < 2, code: 'DigestMismatch' });
      }
      await rename(tmp, final);
      return tap.bytes;
    } catch (err) {
      onBytes(-counted);
      await unlink(tmp).catch(() => {});
      throw err;
    }
  });
}

/** Downloads a bundle: the manifest (decrypting a legacy one), then the parts concurrently, each verified. */
export async function downloadBundle(o: DownloadOptions): Promise<{ manifestPath: string; parts: string[] }> {
  const { target } = o;
  if (!isPlainFileName(o.manifestName)) throw new UsageError(`-m/--manifest has invalid value '${o.manifestName}': a plain object name is needed, without '/', '\\' or '..'`);
  const manifestPath = join(o.directory, o.manifestName);
  o.line?.(`Downloading manifest ${target.keyPrefix}${o.manifestName} from ${target.bucket} to ${manifestPath} ...`);
  const xml = await fetchManifest(o);
  const source = `s3://${target.bucket}/${target.keyPrefix}${o.manifestName}`;
  const manifest = parseManifest(xml, source);
  checkPartLayout(manifest, source);
  await writeFileAtomically(manifestPath, xml);

  let done = 0;
  let partsDone = 0;
  const total = manifest.bundledSize;
  const names: string[] = [];
  o.progress?.(0, total, 0, manifest.parts.length);
  await runPool(manifest.parts, target.concurrency, async (part, index) => {
    o.line?.(`Downloading part ${target.keyPrefix}${part.filename} to ${join(o.directory, part.filename)} ...`);
    await downloadPart(o, part, partLength(manifest.bundledSize, index), (n) => { done += n; o.progress?.(done, total, partsDone, manifest.parts.length); });
    partsDone++;
    names.push(part.filename);
    o.line?.(`Downloaded ${part.filename} from ${target.bucket}`);
    o.progress?.(done, total, partsDone, manifest.parts.length);
  });
  return { manifestPath, parts: names };
}
