import { createHmac } from 'node:crypto';
import type { AwsCredentialIdentity, HttpRequest, Provider, RequestSigner } from '@smithy/types';

// Query parameters that are part of the SigV2 canonical resource (the S3 REST authentication spec's list).
const SUBRESOURCES = new Set([
  'acl', 'cors', 'delete', 'lifecycle', 'location', 'logging', 'notification', 'partNumber', 'policy',
  'requestPayment', 'restore', 'tagging', 'torrent', 'uploadId', 'uploads', 'versionId', 'versioning', 'versions',
  'website', 'response-cache-control', 'response-content-disposition', 'response-content-encoding',
  'response-content-language', 'response-content-type', 'response-expires',
]);

function header(req: HttpRequest, name: string): string | undefined {
  for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/**
 * The SigV2 string to sign of a request (HMAC-SHA1 over it gives the signature). The Date line is empty:
 * we always send x-amz-date, which some servers require for SigV2 (s3rver verifies only that form).
 */
export function stringToSignV2(req: HttpRequest, bucket: string | undefined): string {
  const amz = Object.entries(req.headers)
    .map(([k, v]) => [k.toLowerCase(), String(v).trim()] as const)
    .filter(([k]) => k.startsWith('x-amz-'))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}:${v}\n`)
    .join('');
  // Virtual-hosted requests carry the bucket in the host name; the resource names it anyway.
  let resource = req.path || '/';
  if (bucket && req.hostname.startsWith(`${bucket}.`)) resource = `/${bucket}${resource}`;
  const sub = Object.entries(req.query ?? {})
    .filter(([k]) => SUBRESOURCES.has(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => (v === null || v === undefined || v === '' ? k : `${k}=${Array.isArray(v) ? v[0] : v}`));
  if (sub.length) resource += '?' + sub.join('&');
  const date = header(req, 'x-amz-date') !== undefined ? '' : header(req, 'date') ?? '';
  return [req.method.toUpperCase(), header(req, 'content-md5') ?? '', header(req, 'content-type') ?? '', date, amz + resource].join('\n');
}

/** Signs a request in place with SigV2 (`Authorization: AWS id:signature`). */
export function signV2(req: HttpRequest, creds: AwsCredentialIdentity, bucket: string | undefined, now = new Date()): HttpRequest {
  // A path-style bucket request goes out as /bucket, not /bucket/: servers disagree on the trailing slash in the
  // SigV2 resource, and without it the path on the wire and the resource are the same string everywhere.
  if (bucket && req.path === `/${bucket}/` && !req.hostname.startsWith(`${bucket}.`)) req.path = `/${bucket}`;
  for (const k of Object.keys(req.headers)) {
    const l = k.toLowerCase();
    if (l === 'authorization' || l === 'x-amz-date' || l === 'x-amz-content-sha256' || l === 'x-amz-security-token' || l === 'date') delete req.headers[k];
  }
  req.headers['x-amz-date'] = now.toUTCString();
  if (creds.sessionToken) req.headers['x-amz-security-token'] = creds.sessionToken;
  const signature = createHmac('sha1', creds.secretAccessKey).update(stringToSignV2(req, bucket), 'utf8').digest('base64');
  req.headers['authorization'] = `AWS ${creds.accessKeyId}:${signature}`;
  return req;
}

/** An SDK RequestSigner doing SigV2 for one bucket's client (credentials resolved per request, so refreshes apply). */
export function createSigV2Signer(credentials: Provider<AwsCredentialIdentity>, bucket: string | undefined): RequestSigner {
  return {
    async sign(request: HttpRequest): Promise<HttpRequest> {
      return signV2(request, await credentials(), bucket);
    },
  };
}
