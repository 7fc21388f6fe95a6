import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CreateBucketCommand, GetBucketLocationCommand, PutObjectCommand, type BucketLocationConstraint, type ObjectCannedACL } from '@aws-sdk/client-s3';
import { ToolError } from '../errors.js';
import { readManifest } from '../bundle/manifest-file.js';
import type { ManifestPart } from '../format/manifest.js';
import type { S3Target } from './client.js';
import { describeS3Error, s3ErrorCode, type S3Context } from './errors.js';
import { displayLocation, regionOfLocation } from './location.js';
import { runPool } from './pool.js';
import { isTransient, withRetry } from './retry.js';

export const ACLS = ['aws-exec-read', 'public-read', 'bucket-owner-full-control', 'private'] as const;
export type Acl = (typeof ACLS)[number];

export interface UploadEvents {
  line?: (text: string) => void;
  warn?: (text: string) => void;
  /** Bytes of parts sent so far (as the requests read them; less again when a request is retried), of the total to send. */
  progress?: (doneBytes: number, totalBytes: number, partsDone: number, partsTotal: number) => void;
}

export interface UploadOptions extends UploadEvents {
  target: S3Target;
  manifestPath: string;
  directory?: string;          // default: the manifest's folder
  acl?: Acl;
  startPart?: number;          // --part N: upload parts N.. only
  skipManifest?: boolean;
  location?: string;           // deprecated --location (EU, US, or a region)
}

export interface UploadResult { manifestKey?: string; uploaded: string[]; skipped: string[] }

/** SHA-1 (hex) and MD5 (base64) of a file in one streamed pass. */
async function hashFile(path: string): Promise<{ sha1: string; md5: string; size: number }> {
  const sha1 = createHash('sha1');
  const md5 = createHash('md5');
  let size = 0;
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) { sha1.update(chunk); md5.update(chunk); size += chunk.length; }
  });
  return { sha1: sha1.digest('hex'), md5: md5.digest('base64'), size };
}

/** Runs one S3 call under the retry policy; a final failure becomes one clear line naming the object. */
export async function s3Call<T>(target: S3Target, ctx: Omit<S3Context, 'region' | 'bucket'>, fn: () => Promise<T>): Promise<T> {
  const full: S3Context = { ...ctx, bucket: target.bucket, region: target.region };
  const label = ctx.key ? ctx.key : `bucket ${target.bucket}`;
  try {
    return await withRetry(`${ctx.action} ${label}`, target.retry, fn);
  } catch (err) {
    if (err instanceof ToolError) throw err;
    const e = describeS3Error(err, full);
    if (isTransient(err) && target.retry.attempts > 1) e.message += ` (gave up after ${target.retry.attempts} attempts)`;
    throw e;
  }
}

/**
 * Makes sure the bucket exists where asked: checks its location (EU and empty mapped as the original does), exits
 * with the original's message if it is elsewhere, creates it in the requested region if missing.
 */
export async function ensureBucket(target: S3Target, location: string | undefined, events: UploadEvents): Promise<void> {
  const requested = location !== undefined ? regionOfLocation(location) : target.regionGiven ? target.region : undefined;
  let current: string | undefined | null;
  try {
    const out = await withRetry(`GetBucketLocation ${target.bucket}`, target.retry, () =>
      target.client.send(new GetBucketLocationCommand({ Bucket: target.bucket })));
    current = out.LocationConstraint ?? '';
  } catch (err) {
    const code = s3ErrorCode(err);
    if (code === 'NoSuchBucket' || code === 'NotFound') current = null;
    else if (code === 'AccessDenied') {
      events.warn?.(`Cannot check the location of bucket ${target.bucket} (s3:GetBucketLocation denied); assuming it exists.`);
      return;
    } else throw describeS3Error(err, { action: 'GetBucketLocation', bucket: target.bucket, region: target.region });
  }
  if (current !== null) {
    if (requested !== undefined && regionOfLocation(current) !== requested) {
      throw new ToolError(`Bucket "${target.bucket}" already exists in "${displayLocation(current)}" and "${displayLocation(location ?? requested)}" was specified.`);
    }
    return;
  }
  const region = requested ?? target.region;
  events.line?.('Creating bucket...');
  await s3Call(target, { action: 'CreateBucket' }, async () => {
    try {
      await target.client.send(new CreateBucketCommand({
        Bucket: target.bucket,
        // us-east-1 takes no LocationConstraint; elsewhere the region name (not the old EU alias, which S3-compatible stores lack).
        CreateBucketConfiguration: region === 'us-east-1' ? undefined : { LocationConstraint: region as BucketLocationConstraint },
      }));
    } catch (err) {
      if (s3ErrorCode(err) === 'BucketAlreadyOwnedByYou') return;
      throw err;
    }
  });
}

/** A file's bytes as the request reads them, counted (so progress moves with bytes, not only per part). */
function countedFile(path: string, onBytes: (n: number) => void): Readable {
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const counter = new Transform({ transform(chunk: Buffer, _enc, cb) { onBytes(chunk.length); cb(null, chunk); } });
  file.on('error', (err) => counter.destroy(err));
  return file.pipe(counter);
}

/** PUTs one file with the ACL and its Content-MD5, its SHA-1 checked first when the manifest gives one. */
async function putFile(target: S3Target, key: string, path: string, acl: Acl, expectedSha1?: string, onBytes: (n: number) => void = () => {}): Promise<number> {
  let h: { sha1: string; md5: string; size: number };
  try {
    h = await hashFile(path);
  } catch (err) {
    throw new ToolError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; check -d/--directory`, { cause: err });
  }
  if (expectedSha1 !== undefined && h.sha1 !== expectedSha1.toLowerCase()) {
    throw new ToolError(`part ${basename(path)} does not match the manifest: its SHA-1 is ${h.sha1} but the manifest says ${expectedSha1}; bundle the image again`);
  }
  await s3Call(target, { action: 'PutObject', key }, async () => {
    let sent = 0;
    try {
      await target.client.send(new PutObjectCommand({
        Bucket: target.bucket, Key: key, Body: countedFile(path, (n) => { sent += n; onBytes(n); }),
        ContentLength: h.size, ContentMD5: h.md5, ACL: acl as ObjectCannedACL,
      }));
    } catch (err) {
      onBytes(-sent); // a retry sends the file again
      throw err;
    }
  });
  return h.size;
}

/** Uploads a bundle: bucket check/creation, parts concurrently (verified, with ACL and Content-MD5), the manifest last. */
export async function uploadBundle(o: UploadOptions): Promise<UploadResult> {
  const { target } = o;
  const acl = o.acl ?? 'aws-exec-read';
  const directory = o.directory ?? dirname(o.manifestPath);
  const manifest = await readManifest(o.manifestPath);
  const indexed = manifest.parts.map((part, index) => ({ part, index }));
  const todo = indexed.filter(({ index }) => o.startPart === undefined || index >= o.startPart);
  const sizes = await Promise.all(todo.map(async ({ part }) => {
    try { return (await stat(join(directory, part.filename))).size; } catch (err) {
      throw new ToolError(`part ${part.filename} is missing from ${directory}: ${(err as NodeJS.ErrnoException).code}; check -d/--directory`, { cause: err });
    }
  }));
  const total = sizes.reduce((a, b) => a + b, 0);

  await ensureBucket(target, o.location, o);

  o.line?.(`Uploading bundled image parts to the S3 bucket ${target.bucket} ...`);
  const skipped = indexed.filter(({ index }) => !todo.some((t) => t.index === index)).map(({ part }) => part.filename);
  for (const name of skipped) o.line?.(`Skipping ${name}`);
  let done = 0;
  let partsDone = 0;
  const uploaded: string[] = [];
  o.progress?.(0, total, 0, todo.length);
  await runPool(todo, target.concurrency, async ({ part }: { part: ManifestPart }) => {
    await putFile(target, target.keyPrefix + part.filename, join(directory, part.filename), acl, part.digest, (n) => {
      done += n;
      o.progress?.(done, total, partsDone, todo.length);
    });
    partsDone++;
    uploaded.push(part.filename);
    o.line?.(`Uploaded ${part.filename}`);
    o.progress?.(done, total, partsDone, todo.length);
  });

  if (o.skipManifest) {
    o.line?.('Skipping manifest.');
    o.line?.('Bundle upload completed.');
    return { uploaded, skipped };
  }
  // Only now, with every part in place, does the manifest go up: EC2 never sees a manifest without its parts.
  const manifestKey = target.keyPrefix + basename(o.manifestPath);
  o.line?.('Uploading manifest ...');
  await putFile(target, manifestKey, o.manifestPath, acl);
  o.line?.('Uploaded manifest.');
  o.line?.(`Manifest uploaded to: ${target.bucket}/${manifestKey}`);
  o.line?.('Bundle upload completed.');
  return { manifestKey, uploaded, skipped };
}
