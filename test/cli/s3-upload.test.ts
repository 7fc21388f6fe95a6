import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { sha1File } from '../helpers/images.js';
import { runCli } from '../helpers/run.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { startFaultProxy, objectRequests, errorBody, type FaultProxy } from '../helpers/fault-proxy.js';
import { checkClient, copyMultipartBundle, listKeys, objectSha1 } from '../helpers/s3-fixture.js';

let server: S3rver;
let proxy: FaultProxy;
let bundle: Awaited<ReturnType<typeof copyMultipartBundle>>;
const creds = ['-a', 'S3RVER', '-s', 'S3RVER'];
const env = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'amitools-test-none' };

beforeAll(async () => {
  server = await startS3rver();
  proxy = await startFaultProxy(server.url);
  bundle = await copyMultipartBundle();
});
afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
  await bundle?.cleanup();
});
beforeEach(() => { proxy.log.length = 0; proxy.rule = undefined; proxy.canned = undefined; });

describe('ec2-upload-bundle on s3rver', () => {
  it('creates the bucket, PUTs every part with the ACL and a correct Content-MD5, the manifest last', async () => {
    const r = await runCli('ec2-upload-bundle', ['-b', 'up-one/some/prefix', '-m', bundle.manifest, '--url', proxy.url, ...creds, '--batch'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Creating bucket...');
    for (const p of bundle.parts) expect(r.stdout).toContain(`Uploaded ${p}`);
    expect(r.stdout).toContain('Manifest uploaded to: up-one/some/prefix/multipart.img.manifest.xml');
    expect(r.stdout).toContain('aws ec2 register-image --image-location up-one/some/prefix/multipart.img.manifest.xml');

    const methods = proxy.log.map((q) => `${q.method} ${q.path.replace(/\/$/, '')}${q.query.has('location') ? '?location' : ''}`);
    expect(methods[0]).toBe('GET /up-one?location');
    expect(methods[1]).toBe('PUT /up-one');
    const puts = objectRequests(proxy.log, 'PUT', 'up-one');
    expect(puts.map((q) => q.path).sort()).toEqual([...bundle.parts, 'multipart.img.manifest.xml'].map((n) => `/up-one/some/prefix/${n}`).sort());
    for (const q of puts) {
      expect(q.headers['x-amz-acl']).toBe('aws-exec-read');
      expect(q.headers['content-md5']).toBe(q.bodyMd5);
      expect(q.headers['content-encoding'] ?? '').not.toContain('aws-chunked');
    }
    expect(puts[puts.length - 1].path).toBe('/up-one/some/prefix/multipart.img.manifest.xml');
    // The CreateBucket body: none for us-east-1.
    expect(proxy.log[1].bodyLength).toBe(0);

    const c = checkClient(server.url);
    for (const p of [...bundle.parts, 'multipart.img.manifest.xml']) {
      expect(await objectSha1(c, 'up-one', `some/prefix/${p}`)).toBe(sha1File(join(bundle.dir, p)));
    }
  });

  it('uses --acl public-read and does not create an existing bucket', async () => {
    const r = await runCli('ec2-upload-bundle', ['-b', 'up-one', '-m', bundle.manifest, '--url', proxy.url, ...creds, '--acl', 'public-read', '--batch'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('Creating bucket');
    const puts = objectRequests(proxy.log, 'PUT', 'up-one');
    expect(puts).toHaveLength(4);
    for (const q of puts) expect(q.headers['x-amz-acl']).toBe('public-read');
  });

  it('--part 2 --skipmanifest uploads part 2 only and no manifest', async () => {
    const r = await runCli('ec2-upload-bundle', ['-b', 'up-resume/p', '-m', bundle.manifest, '--url', proxy.url, ...creds, '--part', '2', '--skipmanifest', '--batch'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Skipping multipart.img.part.0');
    expect(r.stdout).toContain('Skipping multipart.img.part.1');
    expect(r.stdout).toContain('Skipping manifest.');
    const puts = objectRequests(proxy.log, 'PUT', 'up-resume');
    expect(puts.map((q) => q.path)).toEqual(['/up-resume/p/multipart.img.part.2']);
    expect(await listKeys(checkClient(server.url), 'up-resume')).toEqual(['p/multipart.img.part.2']);
  });

  it('refuses a part whose SHA-1 does not match the manifest, before sending it, and uploads no manifest', async () => {
    const bad = await copyMultipartBundle();
    try {
      const { open } = await import('node:fs/promises');
      const fh = await open(join(bad.dir, 'multipart.img.part.1'), 'r+');
      await fh.write(Buffer.from('X'), 0, 1, 5000);
      await fh.close();
      const r = await runCli('ec2-upload-bundle', ['-b', 'up-bad', '-m', bad.manifest, '--url', proxy.url, ...creds, '--concurrency', '1', '--batch'], { env });
      expect(r.code).toBe(254);
      expect(r.stderr).toMatch(/^ERROR: part multipart\.img\.part\.1 in .* is corrupt: its SHA-1 is [0-9a-f]{40} but the manifest says [0-9a-f]{40}; the part is damaged: make or download the bundle again$/m);
      const puts = objectRequests(proxy.log, 'PUT', 'up-bad').map((q) => q.path);
      expect(puts).not.toContain('/up-bad/multipart.img.part.1');
      expect(puts).not.toContain('/up-bad/multipart.img.manifest.xml');
    } finally {
      await bad.cleanup();
    }
  });

  it('signs with SigV2 (verified by s3rver) and reports a wrong secret clearly', async () => {
    const ok = await runCli('ec2-upload-bundle', ['-b', 'up-v2', '-m', bundle.manifest, '--url', proxy.url, ...creds, '--sigv', '2', '--batch'], { env });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    for (const q of objectRequests(proxy.log, 'PUT', 'up-v2')) expect(q.headers.authorization).toMatch(/^AWS S3RVER:/);
    const bad = await runCli('ec2-upload-bundle', ['-b', 'up-v2', '-m', bundle.manifest, '--url', proxy.url, '-a', 'S3RVER', '-s', 'wrong-secret', '--sigv', '2', '--batch'], { env });
    expect(bad.code).toBe(254);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/SignatureDoesNotMatch.*secret-key/);
  });

  it('reports an unknown access key id in one line', async () => {
    const r = await runCli('ec2-upload-bundle', ['-b', 'up-x', '-m', bundle.manifest, '--url', proxy.url, '-a', 'NOBODY', '-s', 'x', '--batch'], { env });
    expect(r.code).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/InvalidAccessKeyId.*--access-key/);
  });

  it('never prints the secret key or token, even with --debug', async () => {
    const secret = 'Sup3rSecretValueNeverShown';
    const token = 'T0kenValueNeverShown';
    const r = await runCli('ec2-upload-bundle', ['-b', 'up-debug', '-m', bundle.manifest, '--url', proxy.url, '-a', 'S3RVER', '-s', secret, '-t', token, '--debug', '--batch'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('DEBUG:');
    expect(r.stderr).toContain('(redacted)');
    for (const out of [r.stdout, r.stderr]) { expect(out).not.toContain(secret); expect(out).not.toContain(token); }
    // The token did go on the wire.
    expect(objectRequests(proxy.log, 'PUT', 'up-debug')[0].headers['x-amz-security-token']).toBe(token);
    // Environment credentials, too.
    const e = await runCli('ec2-upload-bundle', ['-b', 'up-debug', '-m', bundle.manifest, '--url', proxy.url, '--debug', '--batch', '--skipmanifest'],
      { env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: secret, AWS_DELEGATION_TOKEN: token } });
    expect(e.code).toBe(0);
    expect(e.stderr).toContain('credentials from environment');
    for (const out of [e.stdout, e.stderr]) { expect(out).not.toContain(secret); expect(out).not.toContain(token); }
  });

  it('exits 1 with the original wording for a missing -m and a bad --acl', async () => {
    const r = await runCli('ec2-upload-bundle', ['-b', 'x', ...creds], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('missing mandatory parameter: --manifest');
    const a = await runCli('ec2-upload-bundle', ['-b', 'x', '-m', bundle.manifest, '--acl', 'nope', ...creds], { env });
    expect(a.code).toBe(1);
    expect(a.stderr).toContain("--acl has invalid value 'nope'");
  });
});

describe('ec2-upload-bundle: locations and error lines (canned answers from the proxy)', () => {
  const up = (bucket: string, extra: string[] = []) =>
    runCli('ec2-upload-bundle', ['-b', bucket, '-m', bundle.manifest, '--url', proxy.url, ...creds, '--batch', ...extra], { env });
  const isLocation = (q: { method: string; query: URLSearchParams }) => q.method === 'GET' && q.query.has('location');
  const location = (value: string) => (q: { method: string; path: string; query: URLSearchParams }) =>
    isLocation(q) ? { status: 200, body: `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${value}</LocationConstraint>` } : undefined;

  it('maps EU to eu-west-1 and exits with the original message on a mismatch', async () => {
    await checkClient(server.url).send(new CreateBucketCommand({ Bucket: 'loc-eu' }));
    proxy.canned = location('EU');
    const ok = await up('loc-eu', ['--region', 'eu-west-1', '--skipmanifest', '--part', '2', '--sigv', '2']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain('Creating bucket');
    const bad = await up('loc-eu', ['--region', 'us-west-2', '--sigv', '2']);
    expect(bad.code).toBe(254);
    expect(bad.stderr.trim()).toBe('ERROR: Bucket "loc-eu" already exists in "EU" and "us-west-2" was specified.');
    const old = await up('loc-eu', ['--location', 'US', '--sigv', '2']);
    expect(old.stderr.trim()).toBe('ERROR: Bucket "loc-eu" already exists in "EU" and "US" was specified.');
    expect(proxy.log.filter((q) => q.method === 'PUT' && q.path.endsWith('.manifest.xml'))).toEqual([]);
  });

  it('creates a missing bucket in the requested region', async () => {
    const r = await up('loc-new', ['--region', 'ap-south-1', '--skipmanifest', '--part', '2', '--sigv', '2']);
    expect(r.code).toBe(0);
    const create = proxy.log.find((q) => q.method === 'PUT' && q.path.replace(/\/$/, '') === '/loc-new');
    expect(create?.bodyLength).toBeGreaterThan(0);
  });

  it('names the missing permission, disabled ACLs and a wrong region in one line', async () => {
    proxy.canned = (q) => q.method === 'PUT' && q.path.endsWith('.part.0')
      ? { status: 403, body: errorBody('AccessDenied', 'Access Denied') } : undefined;
    const denied = await up('err-denied', ['--concurrency', '1']);
    expect(denied.code).toBe(254);
    expect(denied.stderr.trim()).toMatch(/^ERROR: PutObject on s3:\/\/err-denied\/multipart\.img\.part\.0 was denied \(AccessDenied\): the credentials need s3:PutObject and s3:PutObjectAcl on arn:aws:s3:::err-denied\/\*$/);

    proxy.canned = (q) => q.method === 'PUT' && q.path.endsWith('.part.0')
      ? { status: 400, body: errorBody('AccessControlListNotSupported', 'The bucket does not allow ACLs') } : undefined;
    const acl = await up('err-acl', ['--concurrency', '1']);
    expect(acl.code).toBe(254);
    expect(acl.stderr.trim().split('\n')).toHaveLength(1);
    expect(acl.stderr).toMatch(/has ACLs disabled \(AccessControlListNotSupported\), but EC2 needs the aws-exec-read ACL.*BucketOwnerPreferred/);

    proxy.canned = (q) => isLocation(q)
      ? { status: 301, body: errorBody('PermanentRedirect', 'The bucket you are attempting to access must be addressed using the specified endpoint.'), headers: { 'x-amz-bucket-region': 'eu-central-1' } } : undefined;
    const moved = await up('err-moved');
    expect(moved.code).toBe(254);
    expect(moved.stderr.trim()).toMatch(/^ERROR: bucket err-moved is in region eu-central-1, not us-east-1 \(PermanentRedirect\); run again with --region eu-central-1$/);
  });
});

describe('ec2-upload-bundle without any credentials', () => {
  it('says where credentials come from, in one line', async () => {
    const r = await runCli('ec2-upload-bundle', ['-b', 'nocreds', '-m', bundle.manifest, '--url', proxy.url, '--batch'], {
      env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
        AWS_EC2_METADATA_DISABLED: 'true', AWS_CONTAINER_CREDENTIALS_FULL_URI: '', AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '', AWS_WEB_IDENTITY_TOKEN_FILE: '' },
    });
    expect(r.code).toBe(254);
    expect(r.stderr.trim()).toMatch(/^ERROR: no AWS credentials found for GetBucketLocation on bucket nocreds: pass -a\/--access-key/);
    expect(proxy.log).toEqual([]);
  });
});
