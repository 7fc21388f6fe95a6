import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { resolveCredentials, type CredentialFlags } from '../aws/credentials.js';
import { endpointFromEnv } from '../aws/endpoints.js';
import { UsageError } from '../errors.js';
import { parseBucketArgument, regionFromEndpoint, usePathStyle } from './location.js';
import { createSigV2Signer } from './sigv2.js';
import { DEFAULT_ATTEMPTS, RETRY_FLAG_ATTEMPTS, type RetryPolicy } from '../aws/retry.js';

/** The S3 flags common to the three commands, as parsed by commander. */
export interface S3Flags extends CredentialFlags {
  bucket: string;
  url?: string;
  region?: string;
  sigv?: string;
  retry?: boolean;
  pathStyle?: boolean;
  timeout?: string;
  concurrency?: string;
}

/** A client bound to one bucket, with everything the transfer functions need. */
export interface S3Target {
  client: S3Client;
  bucket: string;
  keyPrefix: string;
  region: string;
  regionGiven: boolean;       // --region was on the command line (location checks apply)
  endpoint: string | undefined;
  pathStyle: boolean;
  sigv: 2 | 4;
  retry: RetryPolicy;
  concurrency: number;
  timeoutMs: number;
  credentialSource: string;   // for --debug: where the credentials came from (never the secret itself)
}

export const DEFAULT_URL = 'https://s3.amazonaws.com';
export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_TIMEOUT_S = 60;

function positiveInt(value: string | undefined, flag: string, fallback: number, max = 1000): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`${flag} has invalid value '${value}': a whole number from 1 to ${max} is required`);
  }
  return Number(value);
}

/** Builds the S3 client for the flags: endpoint/addressing, signature version, plain (non-aws-chunked) bodies, our retry policy. */
export function createS3Target(flags: S3Flags, opts: { env?: NodeJS.ProcessEnv; onRetry?: RetryPolicy['onRetry'] } = {}): S3Target {
  const env = opts.env ?? process.env;
  const { bucket, keyPrefix } = parseBucketArgument(flags.bucket);
  const sigvText = flags.sigv ?? '4';
  if (sigvText !== '2' && sigvText !== '4') throw new UsageError(`--sigv has invalid value '${sigvText}': Please specify one of these values: 2, 4`);
  const sigv = sigvText === '2' ? 2 : 4;
  let endpoint: string | undefined;
  // --url, else the SDK's standard AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (resolved here: addressing depends on it).
  const url = flags.url ?? endpointFromEnv('S3', env);
  if (url !== undefined) {
    const what = flags.url !== undefined ? '--url' : 'the endpoint from AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL';
    let u: URL;
    try { u = new URL(url); } catch { throw new UsageError(`${what} has invalid value '${url}': not a URL (e.g. https://s3.amazonaws.com)`); }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${what} has invalid value '${url}': only http and https URLs are supported`);
    endpoint = u.origin + u.pathname.replace(/\/+$/, '');
  }
  const regionGiven = flags.region !== undefined;
  const region = flags.region ?? (endpoint ? regionFromEndpoint(endpoint) : undefined) ?? DEFAULT_REGION;
  const pathStyle = usePathStyle(bucket, endpoint, flags.pathStyle);
  const concurrency = positiveInt(flags.concurrency, '--concurrency', DEFAULT_CONCURRENCY, 64);
  const timeoutMs = positiveInt(flags.timeout, '--timeout', DEFAULT_TIMEOUT_S, 3600) * 1000;
  const { credentials, source } = resolveCredentials(flags, env);

  const agentOpts = { keepAlive: true, maxSockets: concurrency + 2 };
  const client = new S3Client({
    region,
    endpoint,
    forcePathStyle: pathStyle,
    credentials,
    // The SDK's own retries are off: ours announce each retry and resend bodies from the file.
    maxAttempts: 1,
    // Plain bodies with our Content-MD5: streamed aws-chunked bodies are corrupted by some servers and refused by others.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    followRegionRedirects: false,
    requestHandler: {
      connectionTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      httpAgent: new HttpAgent(agentOpts),
      httpsAgent: new HttpsAgent(agentOpts),
    },
    logger: undefined,
  });
  if (sigv === 2) {
    // Our own signer for old S3-compatible stores; never a silent fallback to V4.
    const provider = client.config.credentials as AwsCredentialIdentityProvider;
    (client.config as { signer: unknown }).signer = async () => createSigV2Signer(() => provider(), bucket);
  }
  return {
    client, bucket, keyPrefix, region, regionGiven, endpoint, pathStyle, sigv, concurrency, timeoutMs,
    retry: { attempts: flags.retry ? RETRY_FLAG_ATTEMPTS : DEFAULT_ATTEMPTS, baseDelayMs: 500, maxDelayMs: 20_000, onRetry: opts.onRetry },
    credentialSource: source,
  };
}
