import { basename, dirname } from 'node:path';
import { CreateBucketCommand, GetBucketLocationCommand, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { ToolError, UsageError } from '../errors.js';
import type { EventHandler } from '../events.js';
import { s3Call } from '../s3/call.js';
import type { S3Target } from '../s3/client.js';
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
export async function ensureBucket(target: S3Target, location: string | undefined, onEvent?: EventHandler): Promise<void> {
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
 * Uploads a bundle: copies its parts from the source store to S3, each bounded and verified against the manifest
 * before it is sent (with the ACL and Content-MD5), concurrently; the manifest last, only after every part.
 */
export async function uploadBundle(o: UploadOptions): Promise<UploadResult> {
  const { store } = o;
  const { target } = store;
  const source = o.source ?? new DirectoryStore(dirname(o.manifestPath));
  const { manifest, xml } = await loadManifest({ path: o.manifestPath }, source);
  const sizes = expectedPartSizes(manifest, o.manifestPath);
  const count = manifest.parts.length;
  if (o.startPart !== undefined && (!Number.isSafeInteger(o.startPart) || o.startPart < 0 || o.startPart >= count)) {
    throw new UsageError(`part ${o.startPart} does not exist: the bundle has ${count} part(s), numbered 0 to ${count - 1}`);
  }
  const todo = manifest.parts.map((part, index) => ({ part, index })).filter(({ index }) => index >= (o.startPart ?? 0));
  const total = todo.reduce((n, { index }) => n + sizes[index]!, 0);

  await ensureBucket(target, o.location, o.onEvent);

  o.onEvent?.({ type: 'step', step: 'uploading-parts', name: target.bucket });
  const skipped = manifest.parts.slice(0, o.startPart ?? 0).map((p) => p.filename);
  for (const name of skipped) o.onEvent?.({ type: 'part', action: 'skipped', name });
  const writer = store.createWriter({ names: manifest.parts.map((p) => p.filename) });
  let done = 0;
  const uploaded: string[] = [];
  o.onEvent?.({ type: 'progress', bytes: 0, totalBytes: total, parts: 0, totalParts: todo.length });
  await runPool(todo, target.concurrency, async ({ part, index }) => {
    const { data, sums } = await readVerifiedPart(source, part, sizes[index]!);
    await writer.putPart(index, data, sums);
    done += data.length;
    uploaded.push(part.filename);
    o.onEvent?.({ type: 'part', action: 'uploaded', name: part.filename, size: data.length, sha1: sums.sha1 });
    o.onEvent?.({ type: 'progress', bytes: done, totalBytes: total, parts: uploaded.length, totalParts: todo.length });
  });

  if (o.skipManifest) {
    o.onEvent?.({ type: 'step', step: 'skipping-manifest' });
    await writer.commit(manifest.parts.map((p) => p.filename));
    return { manifest, uploaded, skipped };
  }
  // Only now, with every part in place, does the manifest go up: EC2 never sees a manifest without its parts.
  const manifestName = basename(o.manifestPath);
  o.onEvent?.({ type: 'step', step: 'uploading-manifest' });
  await writer.commit(manifest.parts.map((p) => p.filename), { name: manifestName, data: Buffer.from(xml) });
  o.onEvent?.({ type: 'step', step: 'manifest-uploaded', name: `${target.bucket}/${store.key(manifestName)}` });
  return { manifestKey: store.key(manifestName), manifest, uploaded, skipped };
}
