import { ToolError } from '../errors.js';
import type { S3Target } from './client.js';
import { describeS3Error, type S3Context } from './errors.js';
import { isTransient, withRetry } from '../aws/retry.js';

/**
 * Runs one S3 call under the retry policy; a final failure becomes one clear line naming the object. After `signal`
 * fired, the call's own error (an abort) is passed on as it is: the caller says what the interrupt left.
 */
export async function s3Call<T>(target: S3Target, ctx: Omit<S3Context, 'region' | 'bucket'>, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const full: S3Context = { ...ctx, bucket: target.bucket, region: target.region };
  const label = ctx.key ? ctx.key : `bucket ${target.bucket}`;
  try {
    return await withRetry(`${ctx.action} ${label}`, target.retry, fn, signal);
  } catch (err) {
    if (err instanceof ToolError || signal?.aborted) throw err;
    const e = describeS3Error(err, full);
    if (isTransient(err) && target.retry.attempts > 1) e.message += ` (gave up after ${target.retry.attempts} attempts)`;
    throw e;
  }
}
