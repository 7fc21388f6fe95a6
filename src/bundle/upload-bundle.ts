import { basename, dirname } from 'node:path';
import { CreateBucketCommand, GetBucketLocationCommand, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { InterruptedError, ToolError, UsageError } from '../errors.js';
import type { EventHandler } from '../events.js';
import { describeS3Error, s3ErrorCode } from '../s3/errors.js';
import { displayLocation, regionOfLocation } from '../s3/location.js';
import { runPool } from '../s3/pool.js';
import { withRetry } from '../aws/retry.js';
import type { Manifest } from '../format/manifest.js';
import { DirectoryStore } from '../store/directory-store.js';
import { expectedPartSizes, readVerifiedPart, type PartStore } from '../store/part-store.js';
import type { S3Store } from '../store/s3-store.js';
import { loadManifest } from './manifest-file.js';

export interface UploadOptions {
  /** The local manifest. */
  manifestPath: string;
  /** Where the parts are (default: the manifest's directory). */
  source?: PartStore;
  /** The bucket and key prefix, with the ACL. */
  store: S3Store;
  /** Upload parts from this index on only (resuming an upload). */
  startPart?: number;
  skipManifest?: boolean;
  /** Deprecated --location of the original: EU, US or a region. */
  location?: string;
  onEvent?: EventHandler;
  /** Stops the work before the manifest goes up (requests in flight are cancelled); the promise rejects. */
  signal?: AbortSignal;
}

export interface UploadResult {
  /** The manifest's key in the bucket; absent with skipManifest. */
  manifestKey?: string;
  /** The bundle's manifest, as read and checked (what a registration needs). */
  manifest: Manifest;
  uploaded: string[];
  skipped: string[];
}

/**
 * Makes sure the bucket exists where asked: checks its location (EU and empty mapped as the original does), exits
 * with the original's message if it is elsewhere, creates it in the requested region if missing.
 */
export async function ensureBucket(store: S3Store, location: string | undefined, onEvent?: EventHandler): Promise<void> {
  const { target, signal } = store;
  const requested = location !== undefined ? regionOfLocation(location) : target.regionGiven ? target.region : undefined;
  let current: string | undefined | null;
  try {
    const out = await withRetry(`GetBucketLocation ${target.bucket}`, target.retry, () =>
      target.client.send(new GetBucketLocationCommand({ Bucket: target.bucket }), { abortSignal: signal }), signal);
    current = out.LocationConstraint ?? '';
  } catch (err) {
    if (signal?.aborted) throw err;
    const code = s3ErrorCode(err);
    if (code === 'NoSuchBucket' || code === 'NotFound') current = null;
    else if (code === 'AccessDenied') {
      onEvent?.({ type: 'warning', message: `Cannot check the location of bucket ${target.bucket} (s3:GetBucketLocation denied); assuming it exists.` });
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
  onEvent?.({ type: 'step', step: 'creating-bucket', name: target.bucket });
  await store.call({ action: 'CreateBucket' }, async (abortSignal) => {
    try {
      await target.client.send(new CreateBucketCommand({
        Bucket: target.bucket,
        // us-east-1 takes no LocationConstraint; elsewhere the region name (not the old EU alias, which S3-compatible stores lack).
        CreateBucketConfiguration: region === 'us-east-1' ? undefined : { LocationConstraint: region as BucketLocationConstraint },
      }), { abortSignal });
    } catch (err) {
      if (s3ErrorCode(err) === 'BucketAlreadyOwnedByYou') return;
      throw err;
    }
  });
}

/**
 * Uploads a bundle: copies its parts from the source store to S3, each bounded and verified against the manifest
 * before it is sent (with the ACL and Content-MD5), concurrently; the manifest last, only after every part.
 */
export async function uploadBundle(o: UploadOptions): Promise<UploadResult> {
  const { store } = o;
  const { target } = store;
  const source = o.source ?? new DirectoryStore(dirname(o.manifestPath));
  const { manifest, data: manifestData } = await loadManifest({ path: o.manifestPath }, source);
  const sizes = expectedPartSizes(manifest, o.manifestPath);
  const count = manifest.parts.length;
  if (o.startPart !== undefined && (!Number.isSafeInteger(o.startPart) || o.startPart < 0 || o.startPart >= count)) {
    throw new UsageError(`the bundle has ${count} parts, numbered 0 to ${count - 1}`);
  }
  const todo = manifest.parts.map((part, index) => ({ part, index })).filter(({ index }) => index >= (o.startPart ?? 0));
  const total = todo.reduce((n, { index }) => n + sizes[index]!, 0);
  // A missing, special or wrong-sized part stops us before the bucket is touched.
  await source.precheck?.(todo.map(({ part, index }) => ({ name: part.filename, size: sizes[index]! })));

  const writer = store.createWriter({ names: manifest.parts.map((p) => p.filename) });
  let done = 0;
  const uploaded: string[] = [];
  const skipped = manifest.parts.slice(0, o.startPart ?? 0).map((p) => p.filename);
  try {
    await ensureBucket(store, o.location, o.onEvent);
    o.onEvent?.({ type: 'step', step: 'uploading-parts', name: target.bucket });
    for (const name of skipped) o.onEvent?.({ type: 'part', action: 'skipped', name });
    o.onEvent?.({ type: 'progress', bytes: 0, totalBytes: total, parts: 0, totalParts: todo.length });
    await runPool(todo, target.concurrency, async ({ part, index }) => {
      const { data, sums } = await readVerifiedPart(source, part, sizes[index]!);
      await writer.putPart(index, data, sums, (n) => {
        done += n;
        o.onEvent?.({ type: 'progress', bytes: done, totalBytes: total, parts: uploaded.length, totalParts: todo.length });
      });
      uploaded.push(part.filename);
      o.onEvent?.({ type: 'part', action: 'uploaded', name: part.filename, size: data.length, sha1: sums.sha1 });
      o.onEvent?.({ type: 'progress', bytes: done, totalBytes: total, parts: uploaded.length, totalParts: todo.length });
    });
    o.signal?.throwIfAborted();
  } catch (err) {
    if (!o.signal?.aborted) throw err;
    throw new InterruptedError(`the manifest was not uploaded (${uploaded.length} of ${todo.length} part(s) were uploaded to ${store.location}); ` +
      'run ec2-upload-bundle again to finish, or ec2-delete-bundle to remove them', { cause: err });
  }

  if (o.skipManifest) {
    o.onEvent?.({ type: 'step', step: 'skipping-manifest' });
    await writer.commit(manifest.parts.map((p) => p.filename));
    return { manifest, uploaded, skipped };
  }
  // Only now, with every part in place, does the manifest go up: EC2 never sees a manifest without its parts.
  const manifestName = basename(o.manifestPath);
  o.onEvent?.({ type: 'step', step: 'uploading-manifest' });
  try {
    await writer.commit(manifest.parts.map((p) => p.filename), { name: manifestName, data: manifestData });
  } catch (err) {
    if (!o.signal?.aborted) throw err;
    throw new InterruptedError(`the upload of the manifest was cancelled; run ec2-upload-bundle again to make sure ${store.location}${manifestName} is complete`, { cause: err });
  }
  o.onEvent?.({ type: 'step', step: 'manifest-uploaded', name: `${target.bucket}/${store.key(manifestName)}` });
  return { manifestKey: store.key(manifestName), manifest, uploaded, skipped };
}
