import { setTimeout as sleep } from 'node:timers/promises';
import type { FinalizeHandler, FinalizeHandlerArguments, MetadataBearer, MiddlewareStack } from '@smithy/types';

/** Our retry policy (the SDK's own retries are off, so every attempt is visible and announced). */
export interface RetryPolicy {
  attempts: number;        // total tries, at least 1
  baseDelayMs: number;     // first backoff; doubled each try, with jitter
  maxDelayMs: number;
  onRetry?: (what: string, attempt: number, attempts: number, delayMs: number, reason: string) => void;
}

export const DEFAULT_ATTEMPTS = 3;
/** `--retry`: the original tried 5 times; we try a few more, with real waits. */
export const RETRY_FLAG_ATTEMPTS = 6;

const TRANSIENT_CODES = new Set([
  'SlowDown', 'InternalError', 'ServiceUnavailable', 'RequestTimeout', 'RequestTimeTooSkewed', 'Throttling',
  'ThrottlingException', 'RequestThrottledException', 'RequestLimitExceeded', 'OperationAborted', 'BadGateway', 'GatewayTimeout',
]);
const TRANSIENT_NET = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);

/** Transient: 5xx, SlowDown and friends, connection resets, timeouts. Marked errors (e.g. a digest mismatch) decide for themselves. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; code?: string; Code?: string; $metadata?: { httpStatusCode?: number }; retryable?: boolean; message?: string };
  if (!e || typeof e !== 'object') return false;
  if (typeof e.retryable === 'boolean') return e.retryable;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return true;
  if (e.name && TRANSIENT_CODES.has(e.name)) return true;
  if (e.Code && TRANSIENT_CODES.has(e.Code)) return true;
  if (e.name === 'TimeoutError') return true;
  if (e.code && TRANSIENT_NET.has(e.code)) return true;
  return /socket hang up|ECONNRESET|EPIPE|premature close|aborted/i.test(e.message ?? '');
}

/** A short reason for a retry line: the S3 code or the network error. */
export function retryReason(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.code ?? (e?.name && e.name !== 'Error' ? e.name : undefined);
  const parts = [status ? `HTTP ${status}` : undefined, name].filter(Boolean);
  return parts.length ? parts.join(' ') : (e?.message ?? String(err)).split('\n')[0];
}

/**
 * Runs fn until it succeeds, a non-transient error occurs, or the attempts are spent (exponential backoff, equal jitter).
 * Once `signal` fired, no further attempt starts and the wait before one is cut short.
 */
export async function withRetry<T>(what: string, policy: RetryPolicy, fn: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (signal?.aborted || attempt >= policy.attempts || !isTransient(err)) throw err;
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.round(cap / 2 + Math.random() * (cap / 2));
      policy.onRetry?.(what, attempt, policy.attempts, delay, retryReason(err));
      await sleep(delay, undefined, { signal });
    }
  }
}

/**
 * Puts every request of an SDK client (its own retries off: maxAttempts 1) under the policy: each attempt re-signed
 * from a fresh copy of the request, each retry announced. `label` names the service and region in the announcements.
 */
export function retryEveryRequest(client: { middlewareStack: MiddlewareStack<any, any> }, label: string, policy: RetryPolicy): void {
  client.middlewareStack.add((next: FinalizeHandler<any, MetadataBearer>, context) => (args: FinalizeHandlerArguments<any>) =>
    withRetry(`${context.commandName ?? 'request'} in ${label}`, policy, () => next({ ...args, request: cloneRequest(args.request) })),
  { step: 'finalizeRequest', priority: 'high', name: 'amitoolsRetry' });
}

/** A fresh copy of a request for another attempt: signing adds headers to the one it is given. */
function cloneRequest(request: unknown): unknown {
  const r = request as { clone?: () => unknown };
  return typeof r?.clone === 'function' ? r.clone() : request;
}
