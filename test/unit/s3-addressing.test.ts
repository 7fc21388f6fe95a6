import { describe, expect, it } from 'vitest';
import { createHmac } from 'node:crypto';
import { ListObjectsCommand } from '@aws-sdk/client-s3';
import { parseBucketArgument, regionFromEndpoint, regionOfLocation, usePathStyle } from '../../src/s3/location.js';
import { signV2, stringToSignV2 } from '../../src/s3/sigv2.js';
import { s3TargetOptions } from '../../src/cli/s3-options.js';
import { createS3Target } from '../../src/s3/client.js';
import { resolveCredentials } from '../../src/aws/credentials.js';
import { isTransient } from '../../src/aws/retry.js';
import { runPool } from '../../src/s3/pool.js';
import { cliErrorMessage } from '../../src/cli/errors.js';

function cliErrorMessageOf(f: () => unknown): string {
  try { f(); } catch (err) { return cliErrorMessage(err); }
  throw new Error('did not throw');
}

const noEnv = {} as NodeJS.ProcessEnv;

describe('bucket argument and addressing', () => {
  it('splits BUCKET[/key/prefix] as the original', () => {
    expect(parseBucketArgument('b')).toEqual({ bucket: 'b', keyPrefix: '' });
    expect(parseBucketArgument('/b/some/prefix/')).toEqual({ bucket: 'b', keyPrefix: 'some/prefix/' });
    expect(() => parseBucketArgument('/')).toThrow("bucket has invalid value '/': no bucket name before the first '/'");
    expect(cliErrorMessageOf(() => parseBucketArgument('/'))).toBe("--bucket has invalid value '/': no bucket name before the first '/'");
  });

  it('uses path style for non-DNS-safe names, IP/localhost endpoints, and when asked', () => {
    expect(usePathStyle('my-bucket', undefined)).toBe(false);
    expect(usePathStyle('my-bucket', 'https://s3.example.com:8443')).toBe(false);
    expect(usePathStyle('my.bucket', undefined)).toBe(true);
    expect(usePathStyle('My_Bucket', undefined)).toBe(true);
    expect(usePathStyle('my-bucket', 'http://127.0.0.1:9000')).toBe(true);
    expect(usePathStyle('my-bucket', 'http://[::1]:9000')).toBe(true);
    expect(usePathStyle('my-bucket', 'http://localhost:9000')).toBe(true);
    expect(usePathStyle('my-bucket', undefined, true)).toBe(true);
  });

  it('guesses the region from an endpoint and maps locations as the original', () => {
    expect(regionFromEndpoint('https://s3.amazonaws.com')).toBe('us-east-1');
    expect(regionFromEndpoint('https://s3-eu-west-1.amazonaws.com')).toBe('eu-west-1');
    expect(regionFromEndpoint('https://s3.cn-north-1.amazonaws.com.cn')).toBe('cn-north-1');
    expect(regionFromEndpoint('http://127.0.0.1:9000')).toBeUndefined();
    expect(regionOfLocation('')).toBe('us-east-1');
    expect(regionOfLocation(null)).toBe('us-east-1');
    expect(regionOfLocation('EU')).toBe('eu-west-1');
    expect(regionOfLocation('ap-south-1')).toBe('ap-south-1');
  });

  // Where the SDK would send a request, captured just before it leaves (nothing is sent).
  async function requestUrl(flags: Parameters<typeof createS3Target>[0]): Promise<string> {
    const t = createS3Target(flags, { env: noEnv });
    let url = '';
    t.client.middlewareStack.add((() => async (args: { request: { protocol: string; hostname: string; port?: number; path: string } }) => {
      const r = args.request;
      url = `${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}`;
      throw new Error('captured');
    }) as never, { step: 'finalizeRequest', priority: 'low' });
    await t.client.send(new ListObjectsCommand({ Bucket: t.bucket })).catch(() => {});
    return url;
  }

  it('builds virtual-hosted and path-style URLs and keeps the port of --url', async () => {
    const c = { accessKey: 'AKID', secretKey: 'x' };
    expect(await requestUrl({ ...c, bucket: 'my-bucket/p', endpoint: 'https://s3.example.com:8443' })).toBe('https://my-bucket.s3.example.com:8443/');
    expect(await requestUrl({ ...c, bucket: 'my.bucket', endpoint: 'https://s3.example.com:8443' })).toBe('https://s3.example.com:8443/my.bucket/');
    expect(await requestUrl({ ...c, bucket: 'my-bucket', endpoint: 'https://s3.example.com:8443', pathStyle: true })).toBe('https://s3.example.com:8443/my-bucket/');
    expect(await requestUrl({ ...c, bucket: 'my-bucket', region: 'eu-west-1' })).toBe('https://my-bucket.s3.eu-west-1.amazonaws.com/');
  });
});

describe('credentials', () => {
  it('takes the flags, then the environment (with the original\'s AWS_DELEGATION_TOKEN), then the SDK chain', () => {
    expect(resolveCredentials({ bucket: 'b', accessKey: 'A', secretKey: 'S', delegationToken: 'T' }, noEnv))
      .toEqual({ credentials: { accessKeyId: 'A', secretAccessKey: 'S', sessionToken: 'T' }, source: 'command line' });
    expect(resolveCredentials({ bucket: 'b' }, { AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'S', AWS_DELEGATION_TOKEN: 'D' }).credentials?.sessionToken).toBe('D');
    expect(resolveCredentials({ bucket: 'b' }, { AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'S', AWS_SESSION_TOKEN: 'X', AWS_DELEGATION_TOKEN: 'D' }).credentials?.sessionToken).toBe('X');
    expect(resolveCredentials({ bucket: 'b' }, noEnv).credentials).toBeUndefined();
    expect(() => resolveCredentials({ bucket: 'b', accessKey: 'A' }, noEnv)).toThrow('credentials need both an access key ID and a secret access key');
    expect(() => s3TargetOptions({ bucket: 'b', accessKey: 'A' })).toThrow('missing mandatory parameter: --secret-key (needed with --access-key)');
    expect(() => s3TargetOptions({ bucket: 'b', secretKey: 'S' })).toThrow('missing mandatory parameter: --access-key (needed with --secret-key)');
  });

  it('refuses a bad --sigv, --concurrency and --url (the flags are read in the CLI; the library takes typed values)', () => {
    expect(() => s3TargetOptions({ bucket: 'b', sigv: '3' })).toThrow(/--sigv has invalid value '3'/);
    expect(() => s3TargetOptions({ bucket: 'b', concurrency: '0' })).toThrow(/--concurrency has invalid value/);
    expect(() => s3TargetOptions({ bucket: 'b', url: 'ftp://x' })).toThrow(/--url has invalid value/);
    expect(s3TargetOptions({ bucket: 'b', sigv: '2', concurrency: '8', timeout: '5', url: 'http://h:1' }))
      .toMatchObject({ sigv: 2, concurrency: 8, timeoutMs: 5000, endpoint: 'http://h:1', endpointSource: '--url' });
  });
});

describe('SigV2 signer', () => {
  it('reproduces the S3 documentation example (johnsmith/photos/puppy.jpg)', () => {
    const req = { method: 'GET', protocol: 'https:', hostname: 'johnsmith.s3.amazonaws.com', path: '/photos/puppy.jpg', query: {},
      headers: { Date: 'Tue, 27 Mar 2007 19:36:42 +0000', Host: 'johnsmith.s3.amazonaws.com' } };
    const sts = stringToSignV2(req as never, 'johnsmith');
    expect(sts).toBe('GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg');
    expect(createHmac('sha1', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY').update(sts).digest('base64')).toBe('bWq2s1WEIj+Ydj0vQ697zp+IXMU=');
  });

  it('signs x-amz headers, Content-MD5 and subresources; drops SigV4 headers; a path-style bucket request loses its trailing slash', () => {
    const req = { method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', port: 9000, path: '/b/', query: { location: '', 'x-id': 'PutObject' },
      headers: { 'x-amz-content-sha256': 'UNSIGNED', 'X-Amz-ACL': 'aws-exec-read', 'content-md5': 'MD5==', 'content-type': 'text/xml' } };
    const now = new Date(Date.UTC(2020, 0, 2, 3, 4, 5));
    signV2(req as never, { accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOK' }, 'b', now);
    expect(req.path).toBe('/b');
    const headers = req.headers as Record<string, string>;
    expect(headers['x-amz-content-sha256']).toBeUndefined();
    const sts = 'PUT\nMD5==\ntext/xml\n\nx-amz-acl:aws-exec-read\nx-amz-date:Thu, 02 Jan 2020 03:04:05 GMT\nx-amz-security-token:TOK\n/b?location';
    expect(headers.authorization).toBe(`AWS AK:${createHmac('sha1', 'SK').update(sts).digest('base64')}`);
  });
});

describe('retry policy and pool', () => {
  it('retries 5xx, SlowDown, resets and timeouts, not 4xx', () => {
    expect(isTransient({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } })).toBe(true);
    expect(isTransient({ name: 'InternalError', $metadata: { httpStatusCode: 500 } })).toBe(true);
    expect(isTransient(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('x'), { name: 'TimeoutError' }))).toBe(true);
    expect(isTransient({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })).toBe(false);
    expect(isTransient({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } })).toBe(false);
  });

  it('runs at most N at once and stops starting new work after a failure', async () => {
    let active = 0;
    let peak = 0;
    const started: number[] = [];
    await expect(runPool([0, 1, 2, 3, 4, 5, 6, 7], 3, async (i) => {
      started.push(i);
      active++; peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 10));
      active--;
      if (i === 1) throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(peak).toBe(3);
    expect(started.length).toBeLessThan(8);
  });
});
