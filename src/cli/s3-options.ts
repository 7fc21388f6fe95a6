import type { Command } from 'commander';
import type { FinalizeHandler, FinalizeHandlerArguments, MetadataBearer } from '@smithy/types';
import { announceRetry, type Reporter } from './reporter.js';
import { openS3Target, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, type S3Flags, type S3Target } from '../s3/client.js';

/** The S3 flags of the original (-b -a -s -t --url --region --sigv --retry) plus ours (--concurrency --timeout --path-style, the AWS CLI's --profile and --endpoint-url). */
export function addS3Options(cmd: Command): Command {
  return cmd
    .option('-b, --bucket <BUCKET>', "The bucket to use, followed by an optional key prefix: BUCKET[/key/prefix] (or the AWS CLI's s3://BUCKET/prefix).")
    .option('-a, --access-key <KEY>', 'AWS access key id (default: AWS_ACCESS_KEY_ID, then the profile, then the SDK default chain).')
    .option('-s, --secret-key <KEY>', 'AWS secret access key (default: AWS_SECRET_ACCESS_KEY, then the profile, then the SDK default chain).')
    .option('-t, --delegation-token <TOKEN>', 'Session token (default: AWS_SESSION_TOKEN or AWS_DELEGATION_TOKEN).')
    .option('--profile <NAME>', 'The profile in ~/.aws/config and ~/.aws/credentials to use (default: AWS_PROFILE, else default).')
    .option('--url <URL>', 'The S3 service URL (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile\'s endpoint_url, else the endpoint of the region).')
    .option('--endpoint-url <URL>', 'The same as --url (the AWS CLI\'s name).')
    .option('--region <REGION>', 'The S3 region (default: the region in --url, AWS_REGION, AWS_DEFAULT_REGION, the profile\'s region, an existing bucket\'s own region, else us-east-1).')
    .option('--sigv <VERSION>', 'Signature version, 2 or 4 (default: 4).')
    .option('--retry', 'Retry transient failures more times (they are retried a few times anyway).')
    .option('--concurrency <N>', `Transfers in parallel (default: ${DEFAULT_CONCURRENCY}).`)
    .option('--timeout <SECONDS>', `Abandon a request after this long without progress (default: ${DEFAULT_TIMEOUT_S}).`)
    .option('--path-style', 'Use path-style addressing (bucket in the path) even for DNS-safe bucket names.');
}

const REDACTED = new Set(['authorization', 'x-amz-security-token']);

/**
 * Builds the target from the flags and the AWS CLI's settings; retries are announced on stderr; --debug says which
 * endpoint, region, proxy and credentials are used and why, and logs requests with secrets redacted.
 */
export async function targetFromFlags(flags: S3Flags & { debug?: boolean; profile?: string }, reporter: Reporter): Promise<S3Target> {
  const target = await openS3Target(flags, {
    onRetry: announceRetry(reporter),
  });
  if (flags.debug) {
    reporter.warn(`DEBUG: endpoint ${target.endpointInUse}, region ${target.region} (from ${target.regionSource}), ` +
      `${target.pathStyle ? 'path' : 'virtual-hosted'} style, SigV${target.sigv}, credentials from ${target.credentialSource}, ` +
      `${target.proxy ? `proxy ${target.proxy}` : 'no proxy'}${target.caSource ? `, CA bundle ${target.caSource}` : ''}`);
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
