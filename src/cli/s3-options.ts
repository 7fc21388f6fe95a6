import type { Command } from 'commander';
import type { FinalizeHandler, FinalizeHandlerArguments, MetadataBearer } from '@smithy/types';
import { announceRetry, type Reporter } from './reporter.js';
import type { CredentialFlags } from '../aws/credentials.js';
import { UsageError } from '../errors.js';
import type { S3Target, S3TargetOptions } from '../s3/client.js';
import { ACLS, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_S, type Acl } from '../s3/defaults.js';
import { invalidValue } from './command.js';

/** The S3 flags common to the S3 commands, as commander parses them. */
export interface S3Flags extends CredentialFlags {
  bucket: string;
  url?: string;
  endpointUrl?: string;
  region?: string;
  sigv?: string;
  retry?: boolean;
  pathStyle?: boolean;
  timeout?: string;
  concurrency?: string;
}

function positiveInt(value: string | undefined, flag: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) throw invalidValue(flag, value, `a whole number from 1 to ${max} is required`);
  return Number(value);
}

/** -a and -s go together (the library would refuse one alone; this words it as the original does). */
export function checkCredentialFlags(flags: CredentialFlags): void {
  if (flags.accessKey && !flags.secretKey) throw new UsageError('missing mandatory parameter: --secret-key (needed with --access-key)');
  if (flags.secretKey && !flags.accessKey) throw new UsageError('missing mandatory parameter: --access-key (needed with --secret-key)');
}

/** The flags as the library's typed options: the one place their strings are read and their wording lives. */
export function s3TargetOptions(flags: S3Flags): S3TargetOptions {
  checkCredentialFlags(flags);
  const sigv = flags.sigv ?? '4';
  if (sigv !== '2' && sigv !== '4') throw invalidValue('--sigv', sigv, 'Please specify one of these values: 2, 4');
  if (flags.url !== undefined && flags.endpointUrl !== undefined && flags.url !== flags.endpointUrl) {
    throw new UsageError('--url and --endpoint-url name different endpoints: give one of them');
  }
  const endpoint = flags.url ?? flags.endpointUrl;
  const endpointSource = flags.url !== undefined ? '--url' : '--endpoint-url';
  if (endpoint !== undefined) {
    let u: URL | undefined;
    try { u = new URL(endpoint); } catch { /* below */ }
    if (!u) throw invalidValue(endpointSource, endpoint, 'not a URL (e.g. https://s3.amazonaws.com)');
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidValue(endpointSource, endpoint, 'only http and https URLs are supported');
  }
  const timeout = positiveInt(flags.timeout, '--timeout', 3600);
  return {
    accessKey: flags.accessKey, secretKey: flags.secretKey, delegationToken: flags.delegationToken,
    bucket: flags.bucket, endpoint, endpointSource: endpoint === undefined ? undefined : endpointSource, region: flags.region,
    sigv: sigv === '2' ? 2 : 4, retry: flags.retry, pathStyle: flags.pathStyle,
    timeoutMs: timeout === undefined ? undefined : timeout * 1000, concurrency: positiveInt(flags.concurrency, '--concurrency', 64),
  };
}

/**
 * The S3 flags of the original (-b -a -s -t --url --region --sigv --retry) plus ours (--session-token --concurrency
 * --timeout --path-style, the AWS CLI's --profile and --endpoint-url). `longOnly`: without the short letters, for the
 * bundling commands, whose own -a -s -b keep the original's meaning; `withoutShort`: without these short letters only
 * (e.g. ec2-unbundle's -s, --source).
 */
export function addS3Options(cmd: Command, o: { longOnly?: boolean; withoutShort?: string[] } = {}): Command {
  const flag = (short: string, long: string) => (o.longOnly || o.withoutShort?.includes(short) ? long : `${short}, ${long}`);
  return cmd
    .option(flag('-b', '--bucket <BUCKET>'), "The bucket to use, followed by an optional key prefix: BUCKET[/key/prefix] (or the AWS CLI's s3://BUCKET/prefix).")
    .option(flag('-a', '--access-key <KEY>'), 'AWS access key id (default: AWS_ACCESS_KEY_ID, then the profile, then the SDK default chain).')
    .option(flag('-s', '--secret-key <KEY>'), 'AWS secret access key (default: AWS_SECRET_ACCESS_KEY, then the profile, then the SDK default chain).')
    .option(flag('-t', '--delegation-token <TOKEN>'), 'Session token (default: AWS_SESSION_TOKEN or AWS_DELEGATION_TOKEN).')
    .option('--session-token <TOKEN>', 'The same as --delegation-token (the AWS CLI\'s name).')
    .on('option:session-token', (value: string) => cmd.setOptionValueWithSource('delegationToken', value, 'cli'))
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

/** --acl: one of the canned ACLs EC2 can read a bundle through (default aws-exec-read). */
export function parseAcl(value: string | undefined): Acl {
  const acl = value ?? 'aws-exec-read';
  if (!(ACLS as readonly string[]).includes(acl)) throw invalidValue('--acl', acl, `Please specify one of these values: ${ACLS.join(', ')}`);
  return acl as Acl;
}

const REDACTED = new Set(['authorization', 'x-amz-security-token']);

/**
 * Builds the target from the flags and the AWS CLI's settings; retries are announced on stderr; --debug says which
 * endpoint, region, proxy and credentials are used and why, and logs requests with secrets redacted.
 */
export async function targetFromFlags(flags: S3Flags & { debug?: boolean; profile?: string }, reporter: Reporter): Promise<S3Target> {
  const { openS3Target } = await import('../s3/client.js');
  const target = await openS3Target({ ...s3TargetOptions(flags), profile: flags.profile }, {
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
