/** The services whose endpoint the standard variables can set, as the SDK names them (AWS_ENDPOINT_URL_<ID>). */
export type EndpointService = 'S3' | 'EC2';

/**
 * The SDK's standard endpoint variables: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, unless
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true. The SDK reads them too, but only from process.env and without telling
 * us: S3 needs the endpoint to choose path-style addressing, and the EC2 check on delete needs to know one is set.
 */
export function endpointFromEnv(service: EndpointService, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (/^true$/i.test(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '')) return undefined;
  return env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL || undefined;
}

/** Whether a URL names one of AWS's own endpoints (as opposed to an S3-compatible store or a local stand-in). */
export function isAwsEndpoint(url: string): boolean {
  let host: string;
  try { host = new URL(url).hostname.toLowerCase(); } catch { return false; }
  return /(^|\.)amazonaws\.com(\.cn)?$/.test(host) || /(^|\.)api\.aws$/.test(host);
}
