import { basename } from 'node:path';
import { DeleteBucketCommand } from '@aws-sdk/client-s3';
import { InterruptedError } from '../errors.js';
import type { EventHandler } from '../events.js';
import { s3ErrorCode } from '../s3/errors.js';
import { runPool } from '../s3/pool.js';
import type { S3Store } from '../store/s3-store.js';
import { readManifest } from './manifest-file.js';

export interface DeleteOptions {
  store: S3Store;
  manifestPath?: string;     // a local manifest: delete it and its parts
  prefix?: string;           // or: list under the key prefix and delete the bundle's objects
  clear?: boolean;           // then delete the bucket if it is empty
  /** Asked with the list of names; false keeps everything. */
  confirm: (names: string[]) => Promise<boolean>;
  onEvent?: EventHandler;
  /** Stops the work (requests in flight are cancelled); the promise rejects saying what was deleted. */
  signal?: AbortSignal;
}

export interface DeleteResult { names: string[]; deleted: string[]; bucketDeleted: boolean }

const BUNDLE_SUFFIX = /^\.part\.[0-9]+$|^\.manifest(\.xml)?$/;

/** Deletes a bundle's objects (one DELETE per key, concurrently) after confirmation, then the bucket if asked. */
export async function deleteBundle(o: DeleteOptions): Promise<DeleteResult> {
  const { store } = o;
  const { target } = store;
  let names: string[];
  if (o.manifestPath) {
    names = [basename(o.manifestPath), ...(await readManifest(o.manifestPath)).parts.map((p) => p.filename)];
  } else {
    const prefix = o.prefix ?? '';
    names = await store.list(prefix, (name) => BUNDLE_SUFFIX.test(name.slice(prefix.length)));
  }
  const deleted: string[] = [];
  if (names.length === 0) o.onEvent?.({ type: 'step', step: 'nothing-to-delete' });
  else if (await o.confirm(names)) {
    try {
      await runPool(names, target.concurrency, async (name) => {
        await store.delete(store.key(name));
        deleted.push(name);
        o.onEvent?.({ type: 'part', action: 'deleted', name });
      });
    } catch (err) {
      if (!o.signal?.aborted) throw err;
      throw new InterruptedError(`${deleted.length} of ${names.length} object(s) were deleted; run ec2-delete-bundle again to delete the rest`, { cause: err });
    }
  }
  let bucketDeleted = false;
  if (o.clear) {
    o.onEvent?.({ type: 'step', step: 'deleting-bucket', name: target.bucket });
    try {
      await store.call({ action: 'DeleteBucket' }, (abortSignal) => target.client.send(new DeleteBucketCommand({ Bucket: target.bucket }), { abortSignal }));
      bucketDeleted = true;
    } catch (err) {
      if (s3ErrorCode((err as Error).cause) !== 'BucketNotEmpty') throw err;
      o.onEvent?.({ type: 'warning', message: `Bucket ${target.bucket} is not empty, so it was kept.` });
    }
  }
  return { names, deleted, bucketDeleted };
}
