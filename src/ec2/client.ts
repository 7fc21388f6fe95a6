import type { EC2Client } from '@aws-sdk/client-ec2';
import { ec2Sdk } from './sdk.js';
import type { AwsProfile } from '../aws/config.js';
import { caBundle, configuredEndpoint } from '../aws/config.js';
import { resolveCredentials, type CredentialFlags } from '../aws/credentials.js';
import { createAgents } from '../aws/http.js';
import { DEFAULT_ATTEMPTS, retryEveryRequest, type RetryPolicy } from '../aws/retry.js';

/** Where EC2 requests go and with which credentials. */
export interface Ec2ClientOptions extends CredentialFlags {
  // Credentials: -a/-s (both or neither) and -t, as for S3; without them the environment, then the SDK's default chain.
  /** Sends every region's requests to this URL (tests, proxies). Defaults to $AMITOOLS_EC2_ENDPOINT. */
  endpoint?: string;
  env?: NodeJS.ProcessEnv;
  /** Announces each retry; the policy is the one S3 requests use. */
  onRetry?: RetryPolicy['onRetry'];
  /** The AWS CLI profile (--profile / AWS_PROFILE): its credentials, CA bundle and the SDK's other settings. */
  profile?: AwsProfile;
  /** Tries per request (default: the shared policy's); fewer for a check that must not hold a command up. */
  attempts?: number;
  /** Give up connecting after this long (default 10 s), and waiting for an answer after requestTimeoutMs (default 60 s). */
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** Creates EC2 clients, one per region, sharing credentials and endpoint overrides. */
export type Ec2ClientFactory = (region: string) => EC2Client;

/**
 * The endpoint override for a region: the explicit endpoint or $AMITOOLS_EC2_ENDPOINT for all regions, else the
 * original's $AMITOOLS_EC2_REGION_ENDPOINT ('region@url') for that one region, else the SDK's standard
 * $AWS_ENDPOINT_URL_EC2 / $AWS_ENDPOINT_URL, else none (the SDK's regional endpoint).
 */
export function endpointFor(region: string, opts: Ec2ClientOptions = {}): string | undefined {
  const env = opts.env ?? process.env;
  const all = opts.endpoint ?? env.AMITOOLS_EC2_ENDPOINT;
  if (all) return all;
  const one = env.AMITOOLS_EC2_REGION_ENDPOINT;
  if (one) {
    const parts = one.split('@').map((s) => s.trim());
    if (parts.length === 2 && parts[0] === region && parts[1]) {
      return /^https?:\/\//.test(parts[1]) ? parts[1] : `https://${parts[1]}`;
    }
  }
  return configuredEndpoint('ec2', opts.profile, env)?.value;
}

/**
 * Resolves credentials as the S3 commands do (-a/-s, environment, profile, SDK chain) and returns a factory of EC2
 * clients that go through the environment's proxy and trust the CA bundle, as the S3 commands' clients do.
 */
export function ec2ClientFactory(opts: Ec2ClientOptions = {}): Ec2ClientFactory {
  const env = opts.env ?? process.env;
  const { credentials } = resolveCredentials(opts, env, opts.profile);
  const ca = opts.profile ? caBundle(opts.profile, env) : undefined;
  const agents = createAgents({ maxSockets: 4, ca: ca?.value, env });
  const cache = new Map<string, EC2Client>();
  return (region: string) => {
    let client = cache.get(region);
    if (!client) {
      const endpoint = endpointFor(region, opts);
      // Timeouts so that an unreachable endpoint fails with a message instead of hanging.
      // The SDK's silent retries are off: ours (the S3 commands' policy) announce each one and re-sign each attempt.
      client = new ec2Sdk.EC2Client({
        region, maxAttempts: 1,
        requestHandler: { connectionTimeout: opts.connectionTimeoutMs ?? 10_000, requestTimeout: opts.requestTimeoutMs ?? 60_000, ...agents },
        ...(credentials ? { credentials } : {}), ...(endpoint ? { endpoint } : {}),
        ...(opts.profile?.named ? { profile: opts.profile.name } : {}),
      });
      const policy: RetryPolicy = { attempts: opts.attempts ?? DEFAULT_ATTEMPTS, baseDelayMs: 500, maxDelayMs: 20_000, onRetry: opts.onRetry };
      retryEveryRequest(client, region, policy);
      cache.set(region, client);
    }
    return client;
  };
}
