import { basename } from 'node:path';
import { DeleteBucketCommand } from '@aws-sdk/client-s3';
import { InterruptedError, ToolError } from '../errors.js';
import type { EventHandler } from '../events.js';
import type { Ec2ClientFactory } from '../ec2/client.js';
import { ec2Error, ec2ErrorLine } from '../ec2/errors.js';
import { ownImagesAt, sendDeregisterImage } from '../ec2/images.js';
import { s3ErrorCode } from '../s3/errors.js';
import { runPool } from '../s3/pool.js';
import type { S3Store } from '../store/s3-store.js';
import { readManifest } from './manifest-file.js';

export interface DeleteOptions {
  store: S3Store;
  manifestPath?: string;     // a local manifest: delete it and its parts
  prefix?: string;           // or: list under the key prefix and delete the bundle's objects
  clear?: boolean;           // then delete the bucket if it is empty
  /** Look up AMIs registered from the bundle first (absent: no lookup, as the original). */
  images?: RegisteredImagesCheck;
  /** Asked with the list of names and the AMIs that will be deregistered first; false keeps everything. */
  confirm: (names: string[], deregister: string[]) => Promise<boolean>;
  onEvent?: EventHandler;
  /** Stops the work (requests in flight are cancelled); the promise rejects saying what was deleted. */
  signal?: AbortSignal;
}

/**
 * Deleting the bundle of a registered AMI leaves an AMI that cannot launch. The check asks EC2 (DescribeImages,
 * owner self, filter manifest-location) for the caller's AMIs whose image location is the bundle's manifest.
 */
export interface RegisteredImagesCheck {
  clients: Ec2ClientFactory;
  region: string;
  /** With AMIs found: refuse (default), deregister them first, or delete anyway (warning). */
  action?: 'refuse' | 'deregister' | 'force';
  /** The lookup's deadline (default 10 s): past it, or on any EC2 error, a warning and the deletion goes on. */
  timeoutMs?: number;
}

export interface DeleteResult {
  names: string[];
  deleted: string[];
  bucketDeleted: boolean;
  /** AMIs registered from the bundle (undefined: not looked up, or the lookup failed). */
  registered?: string[];
  deregistered: string[];
}

/** A bundle that registered AMIs point at: not deleted. */
export class BundleRegisteredError extends ToolError {
  constructor(readonly location: string, readonly imageIds: string[]) {
    const one = imageIds.length === 1;
    super(`${one ? `AMI ${imageIds[0]} is` : `AMIs ${imageIds.join(', ')} are`} registered from ${location}: ` +
      `deleting the bundle would leave ${one ? 'it' : 'them'} unable to launch; deregister ${one ? 'it' : 'them'} first`, { code: 'BUNDLE_REGISTERED' });
    this.name = 'BundleRegisteredError';
  }
}

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
  const deregistered: string[] = [];
  let registered: string[] | undefined;
  if (names.length === 0) o.onEvent?.({ type: 'step', step: 'nothing-to-delete' });
  else {
    const manifestName = o.manifestPath ? basename(o.manifestPath) : `${o.prefix ?? ''}.manifest.xml`;
    registered = o.images && (await imagesToHandle(o.images, `${target.bucket}/${store.key(manifestName)}`, o.onEvent));
    const deregister = o.images?.action === 'deregister' ? registered ?? [] : [];
    if (!(await o.confirm(names, deregister))) return { names, deleted, bucketDeleted: false, registered, deregistered };
    for (const id of deregister) {
      try {
        await sendDeregisterImage(o.images!.clients(o.images!.region), id);
      } catch (err) {
        throw ec2Error(err, `DeregisterImage ${id} in ${o.images!.region} failed (nothing was deleted from the bucket)`, 'DeregisterImage');
      }
      deregistered.push(id);
      o.onEvent?.({ type: 'step', step: 'deregistered-image', name: id });
    }
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
  return { names, deleted, bucketDeleted, registered, deregistered };
}

/** The AMIs registered from `location`, after the check's action: refused (thrown), warned about (force), or to deregister. */
async function imagesToHandle(check: RegisteredImagesCheck, location: string, onEvent?: EventHandler): Promise<string[] | undefined> {
  const found = await lookUpImages(check, location, onEvent);
  if (!found?.length) return found;
  const action = check.action ?? 'refuse';
  if (action === 'refuse') throw new BundleRegisteredError(location, found);
  if (action === 'force') {
    onEvent?.({ type: 'warning', message: `Deleting the bundle of ${found.join(', ')} anyway: ${found.length === 1 ? 'it' : 'they'} will no longer launch.` });
  }
  return found;
}

/** The ids of the AMIs registered from `location`; undefined (with a warning) when EC2 cannot be asked in time. */
async function lookUpImages(check: RegisteredImagesCheck, location: string, onEvent?: EventHandler): Promise<string[] | undefined> {
  const ms = check.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${ms / 1000} s`), { name: 'TimeoutError' })), ms);
  });
  try {
    const images = await Promise.race([ownImagesAt(check.clients(check.region), location), deadline]);
    return images.map((i) => i.ImageId!);
  } catch (err) {
    onEvent?.({
      type: 'warning',
      message: `Could not check for AMIs registered from ${location} (DescribeImages in ${check.region}: ${ec2ErrorLine(err, 'DescribeImages')}); deleting without the check.`,
    });
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
