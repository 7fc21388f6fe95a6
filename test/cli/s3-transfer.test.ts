import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { constants, createCipheriv, generateKeyPairSync, publicEncrypt, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { caseImage, readCase, sha1File } from '../helpers/images.js';
import { key } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { startFaultProxy, objectRequests, type FaultProxy } from '../helpers/fault-proxy.js';
import { checkClient, copyMultipartBundle, listKeys } from '../helpers/s3-fixture.js';

let server: S3rver;
let proxy: FaultProxy;
let work: ReturnType<typeof scratch>;
let fixture: Awaited<ReturnType<typeof copyMultipartBundle>>;
const creds = ['-a', 'S3RVER', '-s', 'S3RVER'];
const env = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'amitools-test-none' };
const s3 = (extra: string[]) => ['--url', proxy.url, ...creds, '--batch', ...extra];
const c = () => checkClient(server.url);

beforeAll(async () => {
  server = await startS3rver();
  proxy = await startFaultProxy(server.url);
  work = scratch('s3-transfer');
  fixture = await copyMultipartBundle();
});
afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
  work?.cleanup();
  await fixture?.cleanup();
});
beforeEach(() => { proxy.log.length = 0; proxy.rule = undefined; proxy.canned = undefined; });

async function fresh(name: string): Promise<string> {
  const d = join(work.dir, name);
  await mkdir(d, { recursive: true });
  return d;
}

describe('bundle → upload → download → unbundle on s3rver', () => {
  it('gives the image back byte-exact, through a key prefix', async () => {
    const imgDir = await fresh('rt-image');
    const image = await caseImage('multipart', imgDir);
    const bundleDir = await fresh('rt-bundle');
    const b = await runCli('ec2-bundle-image', ['-i', image, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012',
      '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', bundleDir, '--batch']);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    const manifest = join(bundleDir, 'multipart.img.manifest.xml');
    expect(readdirSync(bundleDir).filter((f) => f.includes('.part.'))).toHaveLength(3);

    const up = await runCli('ec2-upload-bundle', ['-b', 'roundtrip/images/v1', '-m', manifest, ...s3([])], { env });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    const puts = objectRequests(proxy.log, 'PUT', 'roundtrip');
    expect(puts).toHaveLength(4);
    expect(puts[3].path).toBe('/roundtrip/images/v1/multipart.img.manifest.xml');
    for (const q of puts) {
      expect(q.headers['x-amz-acl']).toBe('aws-exec-read');
      expect(q.headers['content-md5']).toBe(q.bodyMd5);
    }

    const dl = await fresh('rt-download');
    const down = await runCli('ec2-download-bundle', ['-b', 'roundtrip/images/v1', '-p', 'multipart.img', '-d', dl, ...s3([])], { env });
    expect(down.stderr).toBe('');
    expect(down.code).toBe(0);
    expect(down.stdout).toContain('Downloaded multipart.img.part.2 from roundtrip');
    expect(readdirSync(dl).sort()).toEqual(readdirSync(bundleDir).sort());
    for (const f of readdirSync(dl)) expect(sha1File(join(dl, f))).toBe(sha1File(join(bundleDir, f)));

    const out = await fresh('rt-out');
    const un = await runCli('ec2-unbundle', ['-m', join(dl, 'multipart.img.manifest.xml'), '-k', key('user-key.pem'), '-s', dl, '-d', out, '--batch']);
    expect(un.code).toBe(0);
    expect(sha1File(join(out, 'multipart.img'))).toBe(readCase('multipart').image.sha1);
  });
});

describe('ec2-download-bundle', () => {
  beforeAll(async () => {
    const up = await runCli('ec2-upload-bundle', ['-b', 'dl-bucket/pre', '-m', fixture.manifest, '--url', server.url, ...creds, '--batch'], { env });
    expect(up.code).toBe(0);
  });

  it('fails naming a corrupted part, after one more read, and leaves no file under its name', async () => {
    await c().send(new PutObjectCommand({ Bucket: 'dl-bucket', Key: 'pre/multipart.img.part.1', Body: randomBytes(10 * 1024 * 1024) }));
    const dir = await fresh('dl-corrupt');
    const r = await runCli('ec2-download-bundle', ['-b', 'dl-bucket/pre', '-p', 'multipart.img', '-d', dir, ...s3(['--concurrency', '1'])], { env });
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: part multipart\.img\.part\.1 in s3:\/\/dl-bucket\/pre\/ is corrupt: its SHA-1 is [0-9a-f]{40} but the manifest says [0-9a-f]{40} \(read twice\)/m);
    expect(objectRequests(proxy.log, 'GET', 'dl-bucket').filter((q) => q.path.endsWith('part.1'))).toHaveLength(2);
    expect(readdirSync(dir)).toEqual([]);

    // A body shorter than the manifest allows is named as such.
    await c().send(new PutObjectCommand({ Bucket: 'dl-bucket', Key: 'pre/multipart.img.part.1', Body: randomBytes(1000) }));
    const short = await runCli('ec2-download-bundle', ['-b', 'dl-bucket/pre', '-p', 'multipart.img', '-d', dir, ...s3(['--concurrency', '1'])], { env });
    expect(short.code).toBe(254);
    expect(short.stderr).toMatch(/^ERROR: part multipart\.img\.part\.1 \(s3:\/\/dl-bucket\/pre\/multipart\.img\.part\.1\) is 1000 bytes long, but the manifest's bundled_size makes it 10485760 bytes/m);
    expect(readdirSync(dir)).toEqual([]);
    // Put it back for the other tests.
    await c().send(new PutObjectCommand({ Bucket: 'dl-bucket', Key: 'pre/multipart.img.part.1', Body: readFileSync(join(fixture.dir, 'multipart.img.part.1')) }));
  });

  it('refuses a manifest naming ../evil before any part request', async () => {
    const xml = readFileSync(fixture.manifest, 'utf8').replace('<filename>multipart.img.part.1</filename>', '<filename>../evil</filename>');
    await c().send(new PutObjectCommand({ Bucket: 'dl-bucket', Key: 'pre/evil.manifest.xml', Body: xml }));
    const dir = await fresh('dl-evil/inner');
    const r = await runCli('ec2-download-bundle', ['-b', 'dl-bucket/pre', '-m', 'evil.manifest.xml', '-d', dir, ...s3([])], { env });
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: Invalid manifest 's3:\/\/dl-bucket\/pre\/evil\.manifest\.xml': .*'\.\.\/evil' is not a plain file name/m);
    expect(proxy.log.map((q) => `${q.method} ${q.path}`)).toEqual(['GET /dl-bucket/pre/evil.manifest.xml']);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(join(dir, '..', 'evil'))).toBe(false);
  });

  it('decrypts a legacy encrypted manifest (scheme version 2) with -k', async () => {
    const xml = readFileSync(fixture.manifest);
    const cert = new X509Certificate(readFileSync(key('user-cert.pem')));
    const aesKey = randomBytes(16);
    const iv = randomBytes(16);
    const wrapped = publicEncrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([aesKey, iv]));
    const cipher = createCipheriv('aes-128-cbc', aesKey, iv);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(wrapped.length);
    const blob = Buffer.concat([Buffer.from([2]), len, wrapped, cipher.update(xml), cipher.final()]);
    await c().send(new PutObjectCommand({ Bucket: 'dl-bucket', Key: 'pre/legacy.manifest.xml', Body: blob }));

    const dir = await fresh('dl-legacy');
    const without = await runCli('ec2-download-bundle', ['-b', 'dl-bucket/pre', '-m', 'legacy.manifest.xml', '-d', dir, ...s3([])], { env });
    expect(without.code).toBe(254);
    expect(without.stderr).toMatch(/encrypted \(legacy format\): pass the private key with -k/);
    const r = await runCli('ec2-download-bundle', ['-b', 'dl-bucket/pre', '-m', 'legacy.manifest.xml', '-k', key('user-key.pem'), '-d', dir, ...s3([])], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Decrypting manifest ...');
    expect(await readFile(join(dir, 'legacy.manifest.xml'))).toEqual(xml);
    for (const p of fixture.parts) expect(sha1File(join(dir, p))).toBe(sha1File(join(fixture.dir, p)));
    const wrong = await runCli('ec2-download-bundle', ['-b', 'dl-bucket/pre', '-m', 'legacy.manifest.xml', '-k', key('ec2-key.pem'), '-d', await fresh('dl-legacy2'), ...s3([])], { env });
    expect(wrong.code).toBe(254);
    expect(wrong.stderr).toMatch(/not the key the manifest was encrypted for/);
  });

  it('names a missing manifest and a missing -d clearly', async () => {
    const r = await runCli('ec2-download-bundle', ['-b', 'dl-bucket/pre', '-p', 'nothing', '-d', await fresh('dl-none'), ...s3([])], { env });
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: s3:\/\/dl-bucket\/pre\/nothing\.manifest\.xml does not exist \(NoSuchKey\)/);
    const d = await runCli('ec2-download-bundle', ['-b', 'dl-bucket/pre', '-d', join(work.dir, 'no-such-dir'), ...s3([])], { env });
    expect(d.code).toBe(1);
    expect(d.stderr).toContain('--directory has invalid value');
  });
});

describe('ec2-delete-bundle', () => {
  it('deletes exactly the bundle\'s keys under a prefix holding over 1000 keys, one DELETE each', async () => {
    const client = c();
    await client.send(new CreateBucketCommand({ Bucket: 'many' }));
    const junk = Array.from({ length: 1010 }, (_, i) => `bulk/multipart.img.junk-${String(i).padStart(4, "0")}`);
    junk.push('bulk/multipart.img.part.x', 'bulk/multipart.img.manifest.xml.bak', 'bulk/multipart.img.part.1.tmp', 'bulk/other.img.part.0');
    for (let i = 0; i < junk.length; i += 50) {
      await Promise.all(junk.slice(i, i + 50).map((k) => client.send(new PutObjectCommand({ Bucket: 'many', Key: k, Body: 'x' }))));
    }
    const up = await runCli('ec2-upload-bundle', ['-b', 'many/bulk', '-m', fixture.manifest, '--url', server.url, ...creds, '--batch'], { env });
    expect(up.code).toBe(0);
    proxy.log.length = 0;

    const refused = await runCli('ec2-delete-bundle', ['-b', 'many/bulk', '-p', 'multipart.img', ...s3([])], { env });
    expect(refused.code).toBe(254);
    expect(refused.stderr).toMatch(/refusing to delete 4 object\(s\) without confirmation.*-y\/--yes/);
    expect(proxy.log.filter((q) => q.method === 'DELETE')).toEqual([]);

    proxy.log.length = 0;
    const r = await runCli('ec2-delete-bundle', ['-b', 'many/bulk', '-p', 'multipart.img', '-y', ...s3([])], { env });
    // An S3-compatible --url and no EC2 endpoint: the AMI check cannot be made, and it says so.
    expect(r.stderr).toBe(`Not checking for AMIs registered from this bundle: ${proxy.url} is an S3-compatible store, not AWS, and no EC2 endpoint is set (AWS_ENDPOINT_URL_EC2).\n`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('   - multipart.img.manifest.xml');
    expect(proxy.log.filter((q) => q.method === 'GET' && q.query.has('marker')).length).toBeGreaterThanOrEqual(1);
    const deletes = proxy.log.filter((q) => q.method === 'DELETE').map((q) => q.path).sort();
    expect(deletes).toEqual([...fixture.parts, 'multipart.img.manifest.xml'].map((n) => `/many/bulk/${n}`).sort());
    expect((await listKeys(client, 'many')).sort()).toEqual(junk.sort());
  });

  it('deletes by local manifest, then --clear removes the empty bucket; a non-empty one is kept', async () => {
    const up = await runCli('ec2-upload-bundle', ['-b', 'clearme', '-m', fixture.manifest, '--url', server.url, ...creds, '--batch'], { env });
    expect(up.code).toBe(0);
    const r = await runCli('ec2-delete-bundle', ['-b', 'clearme', '-m', fixture.manifest, '-y', '--clear', '--no-ec2-check', ...s3([])], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Attempting to delete bucket clearme...');
    expect(proxy.log.filter((q) => q.method === 'DELETE').map((q) => q.path.replace(/\/$/, '')).sort()).toEqual(
      ['/clearme', ...[...fixture.parts, 'multipart.img.manifest.xml'].map((n) => `/clearme/${n}`)].sort());
    await expect(c().send(new HeadBucketCommand({ Bucket: 'clearme' }))).rejects.toThrow();

    const k = await runCli('ec2-delete-bundle', ['-b', 'many', '-p', 'nothing', '-y', '--clear', ...s3([])], { env });
    expect(k.code).toBe(0);
    expect(k.stdout).toContain('No files to delete.');
    expect(k.stderr).toContain('Bucket many is not empty, so it was kept.');
  });
});
