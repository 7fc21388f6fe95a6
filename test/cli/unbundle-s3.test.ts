// Must show (issue 10, 1 and 3): ec2-unbundle -b reads a bundle straight from S3 (s3rver), every part verified before
// its bytes are used and none written to local disk, and -o writes the image to a file (holes restored) or stdout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { sha1File, writeImage } from '../helpers/images.js';
import { ROOT, key } from '../helpers/paths.js';
import { runCli, type RunResult } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { checkClient } from '../helpers/s3-fixture.js';

const MiB = 1 << 20;
const IMAGE_SIZE = 64 * MiB;
let server: S3rver;
const work = scratch('unbundle-s3');
let image: string;
let imageSha1: string;
const env = () => ({ AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'amitools-test-none' });
const s3 = () => ['--url', server.url, '-a', 'S3RVER', '--secret-key', 'S3RVER', '--batch'];
const PARTS = ['sparse.img.part.0', 'sparse.img.part.1', 'sparse.img.part.2'];

beforeAll(async () => {
  server = await startS3rver();
  // A sparse image with 24 MiB of incompressible data: three parts, and holes a restored file must keep.
  image = join(work.dir, 'sparse.img');
  await writeImage(image, {
    size: IMAGE_SIZE, mode: '640', mtime: 1_700_000_000, sparse: true,
    layout: [
      { kind: 'random', label: 'unbundle-s3-a', length: 12 * MiB, offset: 1 * MiB },
      { kind: 'random', label: 'unbundle-s3-b', length: 12 * MiB, offset: 40 * MiB },
      { kind: 'text', label: 'unbundle-s3-c', length: 100_000, offset: IMAGE_SIZE - 200_000 },
    ],
  });
  imageSha1 = sha1File(image);
  const bundle = join(work.dir, 'bundle');
  mkdirSync(bundle);
  const b = await runCli('ec2-bundle-image', ['-i', image, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012',
    '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', bundle, '--batch']);
  expect(b.code, b.stderr).toBe(0);
  expect(readdirSync(bundle).filter((f) => f.includes('.part.')).sort()).toEqual(PARTS);
  const up = await runCli('ec2-upload-bundle', ['-b', 'unb/images/v1', '-m', join(bundle, 'sparse.img.manifest.xml'), ...s3()], { env: env() });
  expect(up.code, up.stderr).toBe(0);
});
afterAll(async () => {
  await server?.stop();
  work.cleanup();
});

let n = 0;
/** A fresh directory: the working directory, TMPDIR and destination of one run. */
function fresh(): { dir: string; tmp: string; out: string } {
  const dir = join(work.dir, `run${n++}`);
  const tmp = join(dir, 'tmp');
  const out = join(dir, 'out');
  mkdirSync(tmp, { recursive: true });
  mkdirSync(out);
  return { dir, tmp, out };
}

/** Every name created in `dirs` while `run` runs (inotify): a part written and removed again is seen too. */
async function watching<T>(dirs: string[], run: () => Promise<T>): Promise<{ result: T; names: string[] }> {
  const names: string[] = [];
  const watchers: FSWatcher[] = dirs.map((d) => watch(d, (_event, name) => { if (name) names.push(String(name)); }));
  try {
    return { result: await run(), names };
  } finally {
    for (const w of watchers) w.close();
  }
}

function unbundleArgs(extra: string[]): string[] {
  return ['-b', 'unb/images/v1', '-k', key('user-key.pem'), ...extra, ...s3()];
}

/** Runs ec2-unbundle with stdout piped through `sha1sum`, as a user would. */
function unbundleToSha1sum(args: string[], cwd: string): Promise<RunResult & { sha1: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `"$0" "$@" | sha1sum`, process.execPath, join(ROOT, 'bin', 'ec2-unbundle.js'), ...args],
      { cwd, env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, sha1: stdout.split(' ')[0]! }));
  });
}

describe('ec2-unbundle -b: straight from S3', () => {
  it('-p PREFIX into -d: byte-exact, no part file on local disk (destination, working directory, TMPDIR)', async () => {
    const r = fresh();
    const { result, names } = await watching([r.dir, r.tmp, r.out], () =>
      runCli('ec2-unbundle', unbundleArgs(['-p', 'sparse.img', '-d', r.out]), { cwd: r.dir, env: { ...env(), TMPDIR: r.tmp } }));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Unbundle complete.\n');
    expect(sha1File(join(r.out, 'sparse.img'))).toBe(imageSha1);
    expect(readdirSync(r.out)).toEqual(['sparse.img']);
    expect(readdirSync(r.tmp)).toEqual([]);
    expect(names.filter((f) => /\.part\.|manifest/.test(f))).toEqual([]);
    // The member's permission bits, as the original restores them.
    expect(statSync(join(r.out, 'sparse.img')).mode & 0o777).toBe(0o640);
  });

  it('-m NAME with --cert checks the signature; a certificate of another key is refused before any part is read', async () => {
    const r = fresh();
    const ok = await runCli('ec2-unbundle', unbundleArgs(['-m', 'sparse.img.manifest.xml', '--cert', key('user-cert.pem'), '-d', r.out]), { cwd: r.dir, env: env() });
    expect(ok.code, ok.stderr).toBe(0);
    expect(sha1File(join(r.out, 'sparse.img'))).toBe(imageSha1);

    const bad = fresh();
    const no = await runCli('ec2-unbundle', unbundleArgs(['-m', 'sparse.img.manifest.xml', '--cert', key('ec2-cert.pem'), '-d', bad.out]), { cwd: bad.dir, env: env() });
    expect(no.code).toBe(254);
    expect(no.stderr).toMatch(/^ERROR: manifest s3:\/\/unb\/images\/v1\/sparse\.img\.manifest\.xml fails authentication with .*ec2-cert\.pem/);
    expect(no.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(readdirSync(bad.out)).toEqual([]);
  });

  it('-o FILE: the image with its holes restored (few blocks allocated), written under a temporary name', async () => {
    const r = fresh();
    const target = join(r.out, 'restored.img');
    const { result, names } = await watching([r.out], () =>
      runCli('ec2-unbundle', unbundleArgs(['-p', 'sparse.img', '-o', target]), { cwd: r.dir, env: { ...env(), TMPDIR: r.tmp } }));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`Wrote sparse.img (64.0 MiB) to ${target}.\nUnbundle complete.\n`);
    expect(sha1File(target)).toBe(imageSha1);
    const st = statSync(target);
    expect(st.size).toBe(IMAGE_SIZE);
    // 24 MiB of data and a 100 kB tail: far fewer than the 64 MiB a file without holes takes.
    expect(st.blocks * 512).toBeLessThan(26 * MiB);
    expect(st.mode & 0o777).toBe(0o640);
    expect(names.some((f) => /^\.restored\.img\.amitools-\d+-[0-9a-f]{8}\.tmp$/.test(f))).toBe(true);
    expect(readdirSync(r.out)).toEqual(['restored.img']);
    expect(readdirSync(r.tmp)).toEqual([]);
  });

  it('-o -: every byte on stdout, holes as zeros (| sha1sum is the image\'s), the lines on stderr', async () => {
    const r = fresh();
    const out = await unbundleToSha1sum(unbundleArgs(['-p', 'sparse.img', '-o', '-']), r.dir);
    expect(out.code).toBe(0);
    expect(out.sha1).toBe(imageSha1);
    expect(out.stderr).toBe('Wrote sparse.img (64.0 MiB) to stdout.\nUnbundle complete.\n');
  });

  it('a corrupt part in S3 is refused before its bytes are used: nothing on stdout, no file left', async () => {
    const c = checkClient(server.url);
    // A copy of the bundle whose first part has one byte changed (same length): nothing may come out of it.
    for (const name of ['sparse.img.manifest.xml', ...PARTS]) {
      const obj = await c.send(new GetObjectCommand({ Bucket: 'unb', Key: `images/v1/${name}` }));
      const body = Buffer.from(await obj.Body!.transformToByteArray());
      if (name === PARTS[0]) body[4096] ^= 0x01;
      await c.send(new PutObjectCommand({ Bucket: 'unb', Key: `images/bad/${name}`, Body: body }));
    }
    const r = fresh();
    const args = ['-b', 'unb/images/bad', '-p', 'sparse.img', '-k', key('user-key.pem'), ...s3()];
    const piped = await unbundleToSha1sum([...args, '-o', '-'], r.dir);
    expect(piped.code).toBe(0); // sha1sum's
    expect(piped.sha1).toBe(createHash('sha1').digest('hex')); // of nothing
    expect(piped.stderr).toMatch(/^ERROR: part sparse\.img\.part\.0 in s3:\/\/unb\/images\/bad\/ is corrupt: its SHA-1 is [0-9a-f]{40} but the manifest says [0-9a-f]{40} \(read twice\)/);

    const file = await runCli('ec2-unbundle', [...args, '-o', join(r.out, 'x.img')], { cwd: r.dir, env: env() });
    expect(file.code).toBe(254);
    expect(file.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(file.stderr).toMatch(/is corrupt/);
    expect(readdirSync(r.out)).toEqual([]);
  });

  it('the S3 flags and -b fit together with the local ones only where they mean something', async () => {
    const r = fresh();
    const cases: [string[], RegExp][] = [
      [unbundleArgs(['-p', 'sparse.img', '-s', r.out]), /^-s\/--source names a directory of parts; with -b/],
      [['-m', join(r.out, 'x.xml'), '-k', key('user-key.pem'), '-p', 'x'], /^-p\/--prefix names a bundle in S3/],
      [['-m', join(r.out, 'x.xml'), '-k', key('user-key.pem'), '--url', server.url], /^--url is for a bundle in S3/],
      [unbundleArgs(['-m', 'a/b.manifest.xml']), /^--manifest has invalid value 'a\/b\.manifest\.xml': a plain name is required/],
      [unbundleArgs(['-p', 'sparse.img', '-o', r.out]), /^--output-image has invalid value .*: it is a directory/],
      [unbundleArgs(['-p', 'sparse.img', '-o', '-', '-d', r.out]), /^-o\/--output-image and -d\/--destination/],
      [unbundleArgs(['-p', 'sparse.img', '-o', '-', '--output', 'json']), /^-o - writes the image to stdout/],
      [unbundleArgs(['-p', 'sparse.img', '-o', join(r.out, 'f.img'), '--device-zeroed']), /^--device-zeroed applies to -o DEVICE only/],
      [unbundleArgs(['-p', 'sparse.img', '--device-zeroed']), /^--device-zeroed applies to -o DEVICE only/],
    ];
    for (const [args, message] of cases) {
      const u = await runCli('ec2-unbundle', args, { cwd: r.dir, env: env() });
      expect(u.stderr, args.join(' ')).toMatch(message);
      expect(u.code, args.join(' ')).toBe(1);
    }
    expect(readdirSync(r.out)).toEqual([]);
  });

  it('--output json names the S3 manifest and the parts at the sizes they were checked at', async () => {
    const r = fresh();
    const u = await runCli('ec2-unbundle', unbundleArgs(['-p', 'sparse.img', '-o', join(r.out, 'j.img'), '--output', 'json']), { cwd: r.dir, env: env() });
    expect(u.code, u.stderr).toBe(0);
    const doc = JSON.parse(u.stdout) as { manifest: string; files: string[]; imageSize: number; parts: { name: string; size: number }[] };
    expect(doc.manifest).toBe('s3://unb/images/v1/sparse.img.manifest.xml');
    expect(doc.files).toEqual([join(r.out, 'j.img')]);
    expect(doc.imageSize).toBe(IMAGE_SIZE);
    expect(doc.parts.map((p) => p.name)).toEqual(PARTS);
    expect(doc.parts[0]!.size).toBe(10 * MiB);
  });
});

// Keeps the fixture's bytes honest: the image is what the layout says (and not all zeros).
it('the test image has data in three places and holes between', () => {
  const head = readFileSync(image).subarray(0, 2 * MiB);
  expect(head.subarray(0, MiB).every((b) => b === 0)).toBe(true);
  expect(head.subarray(MiB).some((b) => b !== 0)).toBe(true);
});
