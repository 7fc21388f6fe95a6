import { EC2Client } from '@aws-sdk/client-ec2';
import { resolveCredentials } from '../aws/credentials.js';

/** Where EC2 requests go and with which credentials. */
export interface Ec2ClientOptions {
  /** -a/--access-key and -s/--secret-key; both or neither. Without them the SDK's default chain applies. */
  accessKey?: string;
  secretKey?: string;
  /** Sends every region's requests to this URL (tests, proxies). Defaults to $AMITOOLS_EC2_ENDPOINT. */
  endpoint?: string;
  env?: NodeJS.ProcessEnv;
}

/** Creates EC2 clients, one per region, sharing credentials and endpoint overrides. */
export type Ec2ClientFactory = (region: string) => EC2Client;

/**
 * The endpoint override for a region: the explicit endpoint or $AMITOOLS_EC2_ENDPOINT for all regions, else the
 * original's $AMITOOLS_EC2_REGION_ENDPOINT ('region@url') for that one region, else the SDK's own resolution.
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
  return undefined;
}

/** Resolves credentials as the S3 commands do (-a/-s, environment, SDK chain) and returns a factory of EC2 clients. */
export function ec2ClientFactory(opts: Ec2ClientOptions = {}): Ec2ClientFactory {
  const { credentials } = resolveCredentials(opts, opts.env);
  const cache = new Map<string, EC2Client>();
  return (region: string) => {
    let client = cache.get(region);
    if (!client) {
      const endpoint = endpointFor(region, opts);
      // Timeouts so that an unreachable endpoint fails with a message instead of hanging.
      client = new EC2Client({ region, maxAttempts: 3, requestHandler: { connectionTimeout: 10_000, requestTimeout: 60_000 }, ...(credentials ? { credentials } : {}), ...(endpoint ? { endpoint } : {}) });
      cache.set(region, client);
    }
    return client;
  };
}
