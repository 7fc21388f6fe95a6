import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { caBundle, configuredEndpoint, configuredRegion, loadProfile, type AwsProfile, type Sourced } from '../aws/config.js';
import { resolveCredentials, type CredentialFlags } from '../aws/credentials.js';
import { createAgents, displayProxy, proxyFor } from '../aws/http.js';
import { UsageError } from '../errors.js';
import { parseBucketArgument, regionFromEndpoint, usePathStyle } from './location.js';
import { createSigV2Signer } from './sigv2.js';
import { describeS3Error } from './errors.js';
import { DEFAULT_ATTEMPTS, RETRY_FLAG_ATTEMPTS, withRetry, type RetryPolicy } from '../aws/retry.js';

/** Where and how to reach one bucket: typed values (the CLI turns its flags into these in src/cli/s3-options.ts). */
export interface S3TargetOptions extends CredentialFlags {
  /** BUCKET[/key/prefix], or s3://BUCKET/prefix. */
  bucket: string;
  /** An http(s) endpoint URL, and what named it (for messages); else the AWS settings', else AWS's own. */
  endpoint?: string;
  endpointSource?: string;
  region?: string;
  sigv?: 2 | 4;
  /** More attempts for transient failures (the original's --retry). */
  retry?: boolean;
  pathStyle?: boolean;
  timeoutMs?: number;
  concurrency?: number;
}

/** A client bound to one bucket, with everything the transfer functions need. */
export interface S3Target {
  client: S3Client;
  bucket: string;
  keyPrefix: string;
  region: string;
  regionGiven: boolean;       // --region was on the command line (location checks apply)
  regionSource: string;       // for --debug: where the region came from
  endpoint: string | undefined;
  /** For --debug: the endpoint the requests go to and why, and the proxy they go through. */
  endpointInUse: string;
  proxy: string | undefined;
  pathStyle: boolean;
  sigv: 2 | 4;
  retry: RetryPolicy;
  concurrency: number;
  timeoutMs: number;
  credentialSource: string;   // for --debug: where the credentials came from (never the secret itself)
  caSource: string | undefined;
}

import { DEFAULT_CONCURRENCY, DEFAULT_REGION, DEFAULT_TIMEOUT_S } from './defaults.js';
export { DEFAULT_CONCURRENCY, DEFAULT_REGION, DEFAULT_TIMEOUT_S, DEFAULT_URL } from './defaults.js';

function parseEndpoint(value: string, what: string): string {
  let u: URL;
  try { u = new URL(value); } catch { throw new UsageError(`${what} has invalid value '${value}': not a URL (e.g. https://s3.amazonaws.com)`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${what} has invalid value '${value}': only http and https URLs are supported`);
  return u.origin + u.pathname.replace(/\/+$/, '');
}

/** A profile with no settings: the AWS CLI's files are not read (library callers, unit tests). */
export const NO_PROFILE: AwsProfile = { name: 'default', named: undefined, settings: {}, sections: {}, configFile: '(none)' };

export interface TargetOptions {
  env?: NodeJS.ProcessEnv;
  profile?: AwsProfile;
  onRetry?: RetryPolicy['onRetry'];
  /** The bucket's own region, as S3 reported it: wins over a configured region, not over --region or an AWS endpoint URL. */
  bucketRegion?: string;
}

/**
 * Builds the S3 client for the flags and the AWS CLI's settings: endpoint (--url/--endpoint-url, AWS_ENDPOINT_URL_S3,
 * AWS_ENDPOINT_URL, the profile) and addressing, region, credentials, proxy and CA bundle, signature version, plain
 * (non-aws-chunked) bodies, our retry policy.
 */
export function createS3Target(flags: S3TargetOptions, opts: TargetOptions = {}): S3Target {
  const env = opts.env ?? process.env;
  const profile = opts.profile ?? NO_PROFILE;
  const { bucket, keyPrefix } = parseBucketArgument(flags.bucket);
  const sigv = flags.sigv ?? 4;
  const given = flags.endpoint;
  const configured: Sourced<string> | undefined = given !== undefined
    ? { value: parseEndpoint(given, flags.endpointSource ?? 'the endpoint'), source: flags.endpointSource ?? 'the endpoint' }
    : (() => { const c = configuredEndpoint('s3', profile, env); return c && { value: parseEndpoint(c.value, c.source), source: c.source }; })();
  const endpoint = configured?.value;
  const fromUrl = given !== undefined && endpoint ? regionFromEndpoint(endpoint) : undefined;
  const regionFound: Sourced<string> = (flags.region || fromUrl ? configuredRegion(flags.region, fromUrl, profile, env) : undefined)
    ?? (opts.bucketRegion ? { value: opts.bucketRegion, source: "the bucket's own region" } : undefined)
    ?? configuredRegion(undefined, undefined, profile, env) ?? { value: DEFAULT_REGION, source: 'the default' };
  const region = regionFound.value;
  const pathStyle = usePathStyle(bucket, endpoint, flags.pathStyle);
  const concurrency = flags.concurrency ?? DEFAULT_CONCURRENCY;
  const timeoutMs = flags.timeoutMs ?? DEFAULT_TIMEOUT_S * 1000;
  const { credentials, source } = resolveCredentials(flags, env, profile);
  const ca = caBundle(profile, env);

  const client = new S3Client({
    region,
    endpoint,
    forcePathStyle: pathStyle,
    credentials,
    // The profile's credentials (and the SDK's other settings) when --profile or AWS_PROFILE names one.
    ...(profile.named ? { profile: profile.name } : {}),
    // The SDK's own retries are off: ours announce each retry and resend bodies from the file.
    maxAttempts: 1,
    // Plain bodies with our Content-MD5: streamed aws-chunked bodies are corrupted by some servers and refused by others.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // No redirect following on the transfers: the SDK swaps the client's region for the length of one request, which
    // races with the concurrent ones, and would resend a PUT body already consumed. openS3Target asks the bucket's
    // region once instead; a configured region that is wrong gets the message naming the right one.
    followRegionRedirects: false,
    requestHandler: {
      connectionTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      ...createAgents({ maxSockets: concurrency + 2, ca: ca?.value, env }),
    },
    logger: undefined,
  });
  if (sigv === 2) {
    // Our own signer for old S3-compatible stores; never a silent fallback to V4.
    const provider = client.config.credentials as AwsCredentialIdentityProvider;
    (client.config as { signer: unknown }).signer = async () => createSigV2Signer(() => provider(), bucket);
  }
  const url = endpoint
    ? (pathStyle ? `${endpoint}/${bucket}` : endpoint.replace('://', `://${bucket}.`))
    : client.config.endpointProvider({ Bucket: bucket, Region: region, UseFIPS: false, UseDualStack: false, ForcePathStyle: pathStyle, Accelerate: false }).url.href.replace(/\/$/, '');
  const proxy = proxyFor(url, env);
  return {
    client, bucket, keyPrefix, region, regionGiven: flags.region !== undefined, regionSource: regionFound.source,
    endpoint, endpointInUse: `${url} (${configured ? configured.source : `AWS's endpoint for ${region}`})`,
    proxy: proxy && displayProxy(proxy), pathStyle, sigv, concurrency, timeoutMs,
    retry: { attempts: flags.retry ? RETRY_FLAG_ATTEMPTS : DEFAULT_ATTEMPTS, baseDelayMs: 500, maxDelayMs: 20_000, onRetry: opts.onRetry },
    credentialSource: source,
    caSource: ca?.source,
  };
}

/** The region S3 reports for an existing bucket (x-amz-bucket-region on HeadBucket, even when refused), if any. */
async function bucketRegion(target: S3Target): Promise<string | undefined> {
  try {
    const out = await withRetry(`HeadBucket ${target.bucket}`, target.retry, () => target.client.send(new HeadBucketCommand({ Bucket: target.bucket })));
    return out.BucketRegion;
  } catch (err) {
    const e = err as { $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string> } };
    // No HTTP answer at all: the endpoint is unreachable, and every other request would fail the same way.
    if (e?.$metadata?.httpStatusCode === undefined) throw describeS3Error(err, { action: 'HeadBucket', bucket: target.bucket, region: target.region });
    return e.$response?.headers?.['x-amz-bucket-region'];
  }
}

/**
 * createS3Target with the AWS CLI's settings read (--profile, AWS_PROFILE, ~/.aws/config), and, when nothing names a
 * region, the bucket's own region for an existing bucket (one HeadBucket; S3 reports the region even when it refuses
 * the request): every request then goes to the right place at once, and a PUT never has to be redirected.
 */
export async function openS3Target(flags: S3TargetOptions & { profile?: string }, opts: Omit<TargetOptions, 'profile' | 'bucketRegion'> = {}): Promise<S3Target> {
  const env = opts.env ?? process.env;
  const profile = await loadProfile(flags.profile, env);
  const first = createS3Target(flags, { ...opts, profile });
  if (first.regionSource !== 'the default') return first;
  const actual = await bucketRegion(first);
  if (!actual || actual === first.region) return first;
  first.client.destroy();
  return createS3Target(flags, { ...opts, profile, bucketRegion: actual });
}
