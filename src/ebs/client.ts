import { EBSClient } from '@aws-sdk/client-ebs';
import type { AwsProfile } from '../aws/config.js';
import { caBundle, configuredEndpoint } from '../aws/config.js';
import { resolveCredentials, type CredentialFlags } from '../aws/credentials.js';
import { createAgents } from '../aws/http.js';
import { retryEveryRequest, type RetryPolicy } from '../aws/retry.js';

/** Where EBS direct API requests go and with which credentials: the same chain as the EC2 and S3 clients. */
export interface EbsClientOptions extends CredentialFlags {
  region: string;
  /** Defaults to the SDK's standard $AWS_ENDPOINT_URL_EBS / $AWS_ENDPOINT_URL, else the regional endpoint. */
  endpoint?: string;
  env?: NodeJS.ProcessEnv;
  profile?: AwsProfile;
  /** Requests in flight at once: the connection pool is sized to it. */
  concurrency: number;
  /** The shared policy (ours; the SDK's own retries are off): block writes are throttled routinely, so they get more tries. */
  retry: RetryPolicy;
}

/** An EBS direct API client whose every request goes through the shared retry policy. */
export function ebsClient(o: EbsClientOptions): EBSClient {
  const env = o.env ?? process.env;
  const { credentials } = resolveCredentials(o, env, o.profile);
  const ca = o.profile ? caBundle(o.profile, env) : undefined;
  const endpoint = o.endpoint ?? configuredEndpoint('ebs', o.profile, env)?.value;
  const client = new EBSClient({
    region: o.region, maxAttempts: 1,
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000, ...createAgents({ maxSockets: o.concurrency, ca: ca?.value, env }) },
    ...(credentials ? { credentials } : {}), ...(endpoint ? { endpoint } : {}),
    ...(o.profile?.named ? { profile: o.profile.name } : {}),
  });
  retryEveryRequest(client, o.region, o.retry);
  return client;
}
