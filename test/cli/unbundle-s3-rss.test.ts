// Must show (issue 10, 6, the unbundle side): ec2-unbundle -b of a 1 GiB incompressible image (103 parts in s3rver)
// peaks under 200 MB resident, as GNU time measures it, whether the image goes into -d or to stdout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { bundleImage, S3Store, createS3Target } from '../../src/index.js';
import { sha1File } from '../helpers/images.js';
import { ROOT, key } from '../helpers/paths.js';
import { runCliPeakRss, runProcess } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { checkClient } from '../helpers/s3-fixture.js';

const MiB = 1 << 20;
const SIZE = 1024 * MiB;
const LIMIT = 200 * 1000 * 1000;
let server: S3rver;
const work = scratch('unbundle-s3-rss');
let imageSha1: string;
const s3 = () => ['--url', server.url, '-a', 'S3RVER', '--secret-key', 'S3RVER', '--batch'];
const env = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'amitools-test-none' };

beforeAll(async () => {
  server = await startS3rver();
  // Incompressible and deterministic: an AES-128-CTR keystream under a fixed key (fast, unlike a hash per 64 bytes).
  const image = join(work.dir, 'big.img');
  const ctr = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  const out = createWriteStream(image);
  const hash = createHash('sha1');
  const zeros = Buffer.alloc(8 * MiB);
  for (let done = 0; done < SIZE; done += zeros.length) {
    const chunk = ctr.update(zeros);
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  imageSha1 = hash.digest('hex');
  await checkClient(server.url).send(new CreateBucketCommand({ Bucket: 'rss' }));
  const store = new S3Store(createS3Target({ bucket: 'rss/big', endpoint: server.url, accessKey: 'S3RVER', secretKey: 'S3RVER' }));
  const r = await bundleImage({ image, store, user: '123456789012', arch: 'x86_64', userCertPath: key('user-cert.pem'), userKeyPath: key('user-key.pem'), ec2CertPath: key('ec2-cert.pem') });
  expect(r.manifest.parts.length).toBeGreaterThan(100);
  store.target.client.destroy();
});
afterAll(async () => {
  await server?.stop();
  work.cleanup();
});

describe('ec2-unbundle -b of a 1 GiB image', () => {
  it('into -d: byte-exact, peak RSS under 200 MB', async () => {
    const out = join(work.dir, 'out');
    mkdirSync(out);
    const r = await runCliPeakRss('ec2-unbundle', ['-b', 'rss/big', '-p', 'big.img', '-k', key('user-key.pem'), '-d', out, ...s3()], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    process.stderr.write(`ec2-unbundle -b -d: peak RSS ${(r.peakRss / 1e6).toFixed(1)} MB\n`);
    expect(r.peakRss).toBeLessThan(LIMIT);
    expect(sha1File(join(out, 'big.img'))).toBe(imageSha1);
  });

  it('-o - | sha1sum: the image\'s SHA-1, peak RSS under 200 MB', async () => {
    const rssFile = join(work.dir, 'maxrss');
    const r = await runProcess('sh', ['-c', '/usr/bin/time -f %M -o "$0" "$@" | sha1sum', rssFile, process.execPath, join(ROOT, 'bin', 'ec2-unbundle.js'),
      '-b', 'rss/big', '-p', 'big.img', '-k', key('user-key.pem'), '-o', '-', ...s3()], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('Wrote big.img (1.0 GiB) to stdout.\nUnbundle complete.\n');
    expect(r.stdout.split(' ')[0]).toBe(imageSha1);
    const peak = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) * 1024;
    process.stderr.write(`ec2-unbundle -b -o -: peak RSS ${(peak / 1e6).toFixed(1)} MB\n`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(LIMIT);
  });
});
