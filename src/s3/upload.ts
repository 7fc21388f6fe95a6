import { createHash } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CreateBucketCommand, GetBucketLocationCommand, PutObjectCommand, type BucketLocationConstraint, type ObjectCannedACL } from '@aws-sdk/client-s3';
import { ToolError, UsageError } from '../errors.js';
import { ioError } from '../io-errors.js';
import { checkLocalParts, openLocalPart } from '../bundle/local-parts.js';
import { readManifest } from '../bundle/manifest-file.js';
import type { ManifestPart } from '../format/manifest.js';
import { checkPartLayout, partLength } from '../format/part-name.js';
import { openRegularFile, type RegularFile } from '../stream/regular-file.js';
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
  /** Bytes of parts sent so far (completed parts), of the total to send. */
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

/** SHA-1 (hex) and MD5 (base64) of the first `size` bytes of an open file, in one streamed pass. */
async function hashFile(file: RegularFile, size: number, path: string, what: string): Promise<{ sha1: string; md5: string }> {
  const sha1 = createHash('sha1');
  const md5 = createHash('md5');
  let seen = 0;
  await pipeline(fileSlice(file, size), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) { sha1.update(chunk); md5.update(chunk); seen += chunk.length; }
  }).catch((err: unknown) => { throw ioError(err, path, `read ${what}`); });
  if (seen !== size) throw new ToolError(`${what} ${path} shrank while it was read; run again when nothing writes to it`, { code: 'IO_ERROR' });
  return { sha1: sha1.digest('hex'), md5: md5.digest('base64') };
}

/** The first `size` bytes of an open file as a fresh stream (one per attempt); the handle stays open. */
function fileSlice(file: RegularFile, size: number): Readable {
  return size === 0 ? Readable.from([]) : file.handle.createReadStream({ start: 0, end: size - 1, autoClose: false, highWaterMark: 1 << 20 });
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

/**
 * PUTs one open local file with the ACL and its Content-MD5, then closes it. A part's SHA-1 must be the manifest's,
 * checked before anything is sent.
 */
async function putFile(target: S3Target, key: string, file: RegularFile, path: string, acl: Acl, what: string, expectedSha1?: string): Promise<number> {
  try {
    const size = file.size;
    const h = await hashFile(file, size, path, what);
    if (expectedSha1 !== undefined && h.sha1 !== expectedSha1.toLowerCase()) {
      throw new ToolError(`${what} ${basename(path)} does not match the manifest: its SHA-1 is ${h.sha1} but the manifest says ${expectedSha1}; bundle the image again`, { code: 'PART_DIGEST_MISMATCH' });
    }
    await s3Call(target, { action: 'PutObject', key }, () =>
      target.client.send(new PutObjectCommand({
        Bucket: target.bucket, Key: key, Body: fileSlice(file, size), ContentLength: size, ContentMD5: h.md5, ACL: acl as ObjectCannedACL,
      })));
    return size;
  } finally {
    await file.handle.close().catch(() => {});
  }
}

/** Uploads a bundle: bucket check/creation, parts concurrently (verified, with ACL and Content-MD5), the manifest last. */
export async function uploadBundle(o: UploadOptions): Promise<UploadResult> {
  const { target } = o;
  const acl = o.acl ?? 'aws-exec-read';
  const directory = o.directory ?? dirname(o.manifestPath);
  const manifest = await readManifest(o.manifestPath);
  checkPartLayout(manifest, o.manifestPath);
  const count = manifest.parts.length;
  if (o.startPart !== undefined && o.startPart >= count) {
    throw new UsageError(`--part has invalid value '${o.startPart}': the bundle has ${count} part${count === 1 ? '' : 's'}, numbered 0 to ${count - 1}`);
  }
  const indexed = manifest.parts.map((part, index) => ({ part, index, length: partLength(manifest.bundledSize, index) }));
  const todo = indexed.filter(({ index }) => o.startPart === undefined || index >= o.startPart);
  // Every part is looked at before the bucket is touched: a missing, special or wrong-sized one stops us here.
  await checkLocalParts(directory, manifest.parts, manifest.bundledSize, o.startPart);
  const total = todo.reduce((a, t) => a + t.length, 0);

  await ensureBucket(target, o.location, o);

  o.line?.(`Uploading bundled image parts to the S3 bucket ${target.bucket} ...`);
  const skipped = indexed.filter(({ index }) => !todo.some((t) => t.index === index)).map(({ part }) => part.filename);
  for (const name of skipped) o.line?.(`Skipping ${name}`);
  let done = 0;
  let partsDone = 0;
  const uploaded: string[] = [];
  o.progress?.(0, total, 0, todo.length);
  await runPool(todo, target.concurrency, async ({ part, length }: { part: ManifestPart; length: number }) => {
    const file = await openLocalPart(directory, part, length);
    const size = await putFile(target, target.keyPrefix + part.filename, file, join(directory, part.filename), acl, 'part', part.digest);
    done += size;
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
  await putFile(target, manifestKey, await openRegularFile(o.manifestPath, 'manifest'), o.manifestPath, acl, 'manifest');
  o.line?.('Uploaded manifest.');
  o.line?.(`Manifest uploaded to: ${target.bucket}/${manifestKey}`);
  o.line?.('Bundle upload completed.');
  return { manifestKey, uploaded, skipped };
}
