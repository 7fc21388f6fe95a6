/** Whether a URL names one of AWS's own endpoints (as opposed to an S3-compatible store or a local stand-in). */
export function isAwsEndpoint(url: string): boolean {
  let host: string;
  try { host = new URL(url).hostname.toLowerCase(); } catch { return false; }
  return /(^|\.)amazonaws\.com(\.cn)?$/.test(host) || /(^|\.)api\.aws$/.test(host);
}
