import type { Command } from 'commander';
import type { FinalizeHandler, FinalizeHandlerArguments, MetadataBearer } from '@smithy/types';
import { announceRetry, type Reporter } from './reporter.js';
import { createS3Target, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, type S3Flags, type S3Target } from '../s3/client.js';

/** The S3 flags of the original (-b -a -s -t --url --region --sigv --retry) plus ours (--concurrency --timeout --path-style). */
export function addS3Options(cmd: Command): Command {
  return cmd
    .option('-b, --bucket <BUCKET>', 'The bucket to use, followed by an optional key prefix: BUCKET[/key/prefix]. Required.')
    .option('-a, --access-key <KEY>', 'AWS access key id (default: AWS_ACCESS_KEY_ID, then the SDK default chain).')
    .option('-s, --secret-key <KEY>', 'AWS secret access key (default: AWS_SECRET_ACCESS_KEY, then the SDK default chain).')
    .option('-t, --delegation-token <TOKEN>', 'Session token (default: AWS_SESSION_TOKEN or AWS_DELEGATION_TOKEN).')
    .option('--url <URL>', 'The S3 service URL (default: the endpoint of --region; https://s3.amazonaws.com for us-east-1).')
    .option('--region <REGION>', 'The S3 region (default: us-east-1, or the region in --url).')
    .option('--sigv <VERSION>', 'Signature version, 2 or 4 (default: 4).')
    .option('--retry', 'Retry transient failures more times (they are retried a few times anyway).')
    .option('--concurrency <N>', `Transfers in parallel (default: ${DEFAULT_CONCURRENCY}).`)
    .option('--timeout <SECONDS>', `Abandon a request after this long without progress (default: ${DEFAULT_TIMEOUT_S}).`)
    .option('--path-style', 'Use path-style addressing (bucket in the path) even for DNS-safe bucket names.');
}

const REDACTED = new Set(['authorization', 'x-amz-security-token']);

/** Builds the target from the flags; retries are announced on stderr; --debug logs requests with secrets redacted. */
export function targetFromFlags(flags: S3Flags & { debug?: boolean }, reporter: Reporter): S3Target {
  const target = createS3Target(flags, { onRetry: announceRetry(reporter) });
  if (flags.debug) {
    reporter.warn(`DEBUG: endpoint ${target.endpoint ?? `(SDK default for ${target.region})`}, region ${target.region}, ` +
      `${target.pathStyle ? 'path' : 'virtual-hosted'} style, SigV${target.sigv}, credentials from ${target.credentialSource}`);
    target.client.middlewareStack.addRelativeTo((next: FinalizeHandler<any, MetadataBearer>) => async (args: FinalizeHandlerArguments<any>) => {
      const req = args.request as { method?: string; protocol?: string; hostname?: string; port?: number; path?: string; headers?: Record<string, string> };
      const headers = Object.entries(req.headers ?? {})
        .map(([k, v]) => `${k}: ${REDACTED.has(k.toLowerCase()) ? '(redacted)' : v}`).join(', ');
      const where = `${req.method} ${req.protocol}//${req.hostname}${req.port ? `:${req.port}` : ''}${req.path}`;
      try {
        const out = await next(args);
        reporter.warn(`DEBUG: ${where} -> ${(out.response as { statusCode?: number }).statusCode} [${headers}]`);
        return out;
      } catch (err) {
        reporter.warn(`DEBUG: ${where} -> ${(err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? (err as Error).name} [${headers}]`);
        throw err;
      }
    }, { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'amitoolsDebugLog' });
  }
  return target;
}
