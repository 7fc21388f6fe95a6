import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sha1File } from '../helpers/images.js';
import { runCli } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { startFaultProxy, objectRequests, type Fault, type FaultProxy } from '../helpers/fault-proxy.js';
import { checkClient, copyMultipartBundle, objectSha1 } from '../helpers/s3-fixture.js';

let server: S3rver;
let proxy: FaultProxy;
let bundle: Awaited<ReturnType<typeof copyMultipartBundle>>;
let work: ReturnType<typeof scratch>;
const env = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'amitools-test-none' };
const flags = () => ['--url', proxy.url, '-a', 'S3RVER', '-s', 'S3RVER', '--batch', '--timeout', '2'];

beforeAll(async () => {
  server = await startS3rver();
  proxy = await startFaultProxy(server.url);
  bundle = await copyMultipartBundle();
  work = scratch('s3-faults');
});
afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
  await bundle?.cleanup();
  work?.cleanup();
});
beforeEach(() => { proxy.log.length = 0; proxy.rule = undefined; });

/** A deterministic third of the part PUTs: the first attempt at every part whose index is 1 mod 3. */
function thirdOfPartPuts(fault: Fault, forever = false) {
  const seen = new Set<string>();
  proxy.rule = (req) => {
    const m = /\.part\.(\d+)$/.exec(req.path);
    if (req.method !== 'PUT' || !m || Number(m[1]) % 3 !== 1) return undefined;
    if (!forever && seen.has(req.path)) return undefined;
    seen.add(req.path);
    return fault;
  };
}

describe('upload through injected faults', () => {
  for (const fault of ['slowdown', 'internal', 'reset', 'stall'] as const) {
    it(`completes through ${fault} on a third of the part PUTs, byte-identical, retries announced`, async () => {
      thirdOfPartPuts(fault);
      const bucket = `fault-${fault}`;
      const r = await runCli('ec2-upload-bundle', ['-b', `${bucket}/x`, '-m', bundle.manifest, ...flags()], { env });
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`^Retrying PutObject x/multipart\\.img\\.part\\.1 in [\\d.]+s \\(attempt 2 of 3\\): ${
        { slowdown: 'HTTP 503 SlowDown', internal: 'HTTP 500 InternalError', reset: '.+', stall: 'TimeoutError' }[fault]}`, 'm'));
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      const puts = objectRequests(proxy.log, 'PUT', bucket);
      expect(puts.filter((q) => q.fault).map((q) => q.path)).toEqual([`/${bucket}/x/multipart.img.part.1`]);
      expect(puts[puts.length - 1].path).toBe(`/${bucket}/x/multipart.img.manifest.xml`);
      const c = checkClient(server.url);
      for (const p of [...bundle.parts, 'multipart.img.manifest.xml']) expect(await objectSha1(c, bucket, `x/${p}`)).toBe(sha1File(join(bundle.dir, p)));
    });
  }

  it('with faults that never end: exits non-zero naming the part, and uploads no manifest', async () => {
    thirdOfPartPuts('slowdown', true);
    const r = await runCli('ec2-upload-bundle', ['-b', 'fault-forever', '-m', bundle.manifest, ...flags()], { env });
    expect(r.code).toBe(254);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('Retrying PutObject multipart.img.part.1'))).toHaveLength(2);
    expect(lines[lines.length - 1]).toMatch(/^ERROR: PutObject on s3:\/\/fault-forever\/multipart\.img\.part\.1 failed: SlowDown \(HTTP 503\).*gave up after 3 attempts/);
    expect(objectRequests(proxy.log, 'PUT', 'fault-forever').map((q) => q.path)).not.toContain('/fault-forever/multipart.img.manifest.xml');
    expect(r.stdout).not.toContain('Manifest uploaded');
  });

  it('--retry raises the attempts', async () => {
    thirdOfPartPuts('internal', true);
    const r = await runCli('ec2-upload-bundle', ['-b', 'fault-retry', '-m', bundle.manifest, ...flags(), '--retry'], { env });
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/gave up after 6 attempts/);
    expect(objectRequests(proxy.log, 'PUT', 'fault-retry').filter((q) => q.path.endsWith('part.1'))).toHaveLength(6);
  }, 60_000);
});

describe('download through injected faults', () => {
  it('retries a reset and a stall on part GETs and still verifies every part', async () => {
    const up = await runCli('ec2-upload-bundle', ['-b', 'fault-dl', '-m', bundle.manifest, '--url', server.url, '-a', 'S3RVER', '-s', 'S3RVER', '--batch'], { env });
    expect(up.code).toBe(0);
    const seen = new Set<string>();
    proxy.rule = (req) => {
      if (req.method !== 'GET' || !/\.part\.[02]$/.test(req.path) || seen.has(req.path)) return undefined;
      seen.add(req.path);
      return req.path.endsWith('0') ? 'reset' : 'stall';
    };
    const dir = join(work.dir, 'dl');
    await mkdir(dir);
    const r = await runCli('ec2-download-bundle', ['-b', 'fault-dl', '-p', 'multipart.img', '-d', dir, ...flags()], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^Retrying GetObject multipart\.img\.part\.0/m);
    expect(r.stderr).toMatch(/^Retrying GetObject multipart\.img\.part\.2 .*TimeoutError/m);
    for (const p of bundle.parts) expect(sha1File(join(dir, p))).toBe(sha1File(join(bundle.dir, p)));
  });
});
