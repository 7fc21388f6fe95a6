import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ToolError, UsageError } from '../errors.js';
import { loadPrivateKey } from '../crypto/keys.js';
import { decryptLegacyManifest, isLegacyEncryptedManifest } from '../format/legacy-manifest.js';
import { parseManifest, type ManifestPart } from '../format/manifest.js';
import { DigestTap } from '../stream/digest-tap.js';
import { StagedFiles, sweepStaleTemporaries } from '../stream/atomic-write.js';
import type { S3Target } from './client.js';
import { isPlainFileName } from '../format/part-name.js';
import { runPool } from './pool.js';
import { s3Call } from './upload.js';

const MAX_MANIFEST_BYTES = 16 << 20;

export interface DownloadOptions {
  target: S3Target;
  manifestName: string;          // object name under the key prefix, e.g. image.manifest.xml
  directory: string;             // must exist
  privateKeyPath?: string;       // only for a legacy encrypted manifest
  line?: (text: string) => void;
  warn?: (text: string) => void;
  progress?: (doneBytes: number, totalBytes: number, partsDone: number, partsTotal: number) => void;
  /** Stops the work: nothing is left in the directory, and the promise rejects. */
  signal?: AbortSignal;
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
    const out = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }), { abortSignal: o.signal });
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of out.Body as Readable) {
      n += (c as Buffer).length;
      if (n > MAX_MANIFEST_BYTES) throw new ToolError(`s3://${target.bucket}/${key} is over 16 MiB: not a manifest`);
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks);
  }, o.signal);
  if (!isLegacyEncryptedManifest(data)) return data.toString('utf8');
  if (!o.privateKeyPath) throw new ToolError(`manifest s3://${target.bucket}/${key} is encrypted (legacy format): pass the private key with -k/--privatekey`);
  o.line?.('Decrypting manifest ...');
  return decryptLegacyManifest(data, loadPrivateKey(o.privateKeyPath), `s3://${target.bucket}/${key}`);
}

/** GETs one part into a staged file, checking its SHA-1 as it streams; a mismatching attempt is discarded. */
async function downloadPart(o: DownloadOptions, staged: StagedFiles, part: ManifestPart, onBytes: (n: number) => void): Promise<number> {
  const { target } = o;
  const key = target.keyPrefix + part.filename;
  const final = join(o.directory, part.filename);
  let mismatches = 0;
  return s3Call(target, { action: 'GetObject', key }, async () => {
    let counted = 0;
    let file;
    try {
      const out = await target.client.send(new GetObjectCommand({ Bucket: target.bucket, Key: key }), { abortSignal: o.signal });
      const staging = await staged.create(final);
      file = staging.file;
      const tap = new DigestTap((total) => { onBytes(total - counted); counted = total; });
      await pipeline(out.Body as Readable, idleWatchdog(target.timeoutMs, key), tap, staging.fh.createWriteStream(), { signal: o.signal });
      const digest = tap.digest();
      if (digest !== part.digest.toLowerCase()) {
        mismatches++;
        // A mismatch is retried once (a bad transfer), then reported (a bad object).
        throw Object.assign(new ToolError(`part ${part.filename} (s3://${target.bucket}/${key}) is corrupt: its SHA-1 is ${digest} but the manifest says ${part.digest}${mismatches > 1 ? ' (twice)' : ''}; upload the bundle again`), { retryable: mismatches < 2, code: 'DigestMismatch' });
      }
      return tap.bytes;
    } catch (err) {
      onBytes(-counted);
      if (file) await staged.discard(file);
      throw err;
    }
  }, o.signal);
}

/**
 * Downloads a bundle: the manifest (decrypting a legacy one), then the parts concurrently, each verified. Parts and
 * manifest are one staged group: they get their names together, the manifest last, once every part verified.
 */
export async function downloadBundle(o: DownloadOptions): Promise<{ manifestPath: string; parts: string[] }> {
  const { target } = o;
  if (!isPlainFileName(o.manifestName)) throw new UsageError(`-m/--manifest has invalid value '${o.manifestName}': a plain object name is needed, without '/', '\\' or '..'`);
  const manifestPath = join(o.directory, o.manifestName);
  await sweepStaleTemporaries(o.directory);
  o.line?.(`Downloading manifest ${target.keyPrefix}${o.manifestName} from ${target.bucket} to ${manifestPath} ...`);
  const xml = await fetchManifest(o);
  const source = `s3://${target.bucket}/${target.keyPrefix}${o.manifestName}`;
  const manifest = parseManifest(xml, source);

  let done = 0;
  let partsDone = 0;
  const total = manifest.bundledSize;
  const names: string[] = [];
  const staged = new StagedFiles({ signal: o.signal });
  try {
    o.progress?.(0, total, 0, manifest.parts.length);
    await runPool(manifest.parts, target.concurrency, async (part) => {
      o.line?.(`Downloading part ${target.keyPrefix}${part.filename} to ${join(o.directory, part.filename)} ...`);
      await downloadPart(o, staged, part, (n) => { done += n; o.progress?.(done, total, partsDone, manifest.parts.length); });
      partsDone++;
      names.push(part.filename);
      o.line?.(`Downloaded ${part.filename} from ${target.bucket}`);
      o.progress?.(done, total, partsDone, manifest.parts.length);
    });
    o.signal?.throwIfAborted();
    await staged.write(manifestPath, xml);
    await staged.commit();
  } catch (err) {
    await staged.abort();
    throw err;
  }
  return { manifestPath, parts: names };
}
