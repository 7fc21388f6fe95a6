import { basename } from 'node:path';
import { DeleteBucketCommand, DeleteObjectCommand, ListObjectsCommand } from '@aws-sdk/client-s3';
import { InterruptedError } from '../errors.js';
import { readManifest } from '../bundle/manifest-file.js';
import type { S3Target } from './client.js';
import { s3ErrorCode } from './errors.js';
import { runPool } from './pool.js';
import { s3Call } from './upload.js';

export interface DeleteOptions {
  target: S3Target;
  manifestPath?: string;     // -m: a local manifest; delete it and its parts
  prefix?: string;           // -p: list under the key prefix and delete the bundle's keys
  clear?: boolean;           // then delete the bucket if it is empty
  /** Asked with the list of names; false keeps everything. */
  confirm: (names: string[]) => Promise<boolean>;
  line?: (text: string) => void;
  warn?: (text: string) => void;
  /** Stops the work (requests in flight are cancelled); the promise rejects saying what was deleted. */
  signal?: AbortSignal;
}

const BUNDLE_SUFFIX = /^\.part\.[0-9]+$|^\.manifest(\.xml)?$/;

/** The names (relative to the key prefix) of a bundle's objects, listed over every page (ListObjects v1 with Marker). */
export async function listBundleKeys(target: S3Target, prefix: string, signal?: AbortSignal): Promise<string[]> {
  const full = target.keyPrefix + prefix;
  const names: string[] = [];
  let marker: string | undefined;
  for (;;) {
    const page = await s3Call(target, { action: 'ListObjects' }, () =>
      target.client.send(new ListObjectsCommand({ Bucket: target.bucket, Prefix: full, Marker: marker }), { abortSignal: signal }), signal);
    const keys = (page.Contents ?? []).map((c) => c.Key ?? '');
    for (const key of keys) {
      if (key.startsWith(full) && BUNDLE_SUFFIX.test(key.slice(full.length))) names.push(key.slice(target.keyPrefix.length));
    }
    if (!page.IsTruncated || keys.length === 0) return names;
    marker = page.NextMarker ?? keys[keys.length - 1];
  }
}

/** Deletes a bundle's objects (one DELETE per key, concurrently) after confirmation, then the bucket with --clear. */
export async function deleteBundle(o: DeleteOptions): Promise<{ deleted: string[]; bucketDeleted: boolean }> {
  const { target } = o;
  let names: string[];
  if (o.manifestPath) {
    names = [basename(o.manifestPath), ...(await readManifest(o.manifestPath)).parts.map((p) => p.filename)];
  } else {
    names = await listBundleKeys(target, o.prefix ?? '', o.signal);
  }
  const deleted: string[] = [];
  if (names.length === 0) {
    o.line?.('No files to delete.');
  } else {
    o.line?.('Deleting files:');
    for (const n of names) o.line?.(`   - ${n}`);
    if (await o.confirm(names)) {
      try {
        await runPool(names, target.concurrency, async (name) => {
          const key = target.keyPrefix + name;
          await s3Call(target, { action: 'DeleteObject', key }, () =>
            target.client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: key }), { abortSignal: o.signal }), o.signal);
          deleted.push(name);
          o.line?.(`Deleted ${name}`);
        });
      } catch (err) {
        if (!o.signal?.aborted) throw err;
        throw new InterruptedError(`${deleted.length} of ${names.length} object(s) were deleted; run ec2-delete-bundle again to delete the rest`, { cause: err });
      }
    } else {
      o.line?.('Nothing deleted.');
    }
  }
  let bucketDeleted = false;
  if (o.clear) {
    o.line?.(`Attempting to delete bucket ${target.bucket}...`);
    try {
      await s3Call(target, { action: 'DeleteBucket' }, () => target.client.send(new DeleteBucketCommand({ Bucket: target.bucket }), { abortSignal: o.signal }), o.signal);
      bucketDeleted = true;
    } catch (err) {
      if (s3ErrorCode((err as Error).cause) !== 'BucketNotEmpty') throw err;
      o.warn?.(`Bucket ${target.bucket} is not empty, so it was kept.`);
    }
  }
  o.line?.('ec2-delete-bundle complete.');
  return { deleted, bucketDeleted };
}
