// All or nothing, even when interrupted: SIGINT/SIGTERM/SIGHUP half-way through a 64 MiB job leave no temporary
// and no final-named file (upload: no manifest in the bucket), exit 130/143/129 with one line; a run after a SIGKILL
// sweeps what the killed run left; a manifest that can't get its name takes the parts with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { sha1File, writeImage } from '../helpers/images.js';
import { key } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { checkClient, listKeys } from '../helpers/s3-fixture.js';
import { TEMP_NAME, bytesIn, deliver, freezeWhen, names, startCli } from '../helpers/interrupt.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const HALF = SIZE / 2;
const NAME = 'big.img';
const EXIT: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
const PARTS = Array.from({ length: 7 }, (_, i) => `${NAME}.part.${i}`);
const BUNDLE = [`${NAME}.manifest.xml`, ...PARTS].sort();
const env = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'amitools-test-none' };

const work = scratch('interrupts');
let server: S3rver;
let image: string;
let imageSha1: string;
let small: string; // for runs that need not be long
let bundleDir: string;
let n = 0;

function fresh(tag: string): string {
  const d = join(work.dir, `${tag}-${n++}`);
  mkdirSync(d);
  return d;
}

const SMALL_BUNDLE = ['small.img.manifest.xml', 'small.img.part.0', 'small.img.part.1'];
const bundleArgs = (out: string, img = image) => ['-i', img, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012',
  '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', out, '--batch'];
const unbundleArgs = (out: string) => ['-m', join(bundleDir, `${NAME}.manifest.xml`), '-k', key('user-key.pem'), '-s', bundleDir, '-d', out, '--batch'];
const s3 = () => ['--url', server.url, '-a', 'S3RVER', '-s', 'S3RVER', '--batch'];
const downloadArgs = (out: string) => ['-b', 'intr-source', '-p', NAME, '-d', out, ...s3()];
const uploadArgs = (bucket: string) => ['-b', bucket, '-m', join(bundleDir, `${NAME}.manifest.xml`), ...s3()];

/** Every name is one of our temporaries, owned by `pid`. */
function allTemporariesOf(dir: string, pid: number | undefined): boolean {
  const found = names(dir);
  return found.length > 0 && found.every((f) => Number(TEMP_NAME.exec(f)?.[1]) === pid);
}

beforeAll(async () => {
  const imgDir = fresh('image');
  image = join(imgDir, NAME);
  // Pseudo-random, so gzip can't shrink it and each command takes long enough to be caught half-way.
  await writeImage(image, { size: SIZE, mode: '644', mtime: 1_700_000_000, sparse: false, layout: [{ kind: 'random', label: 'interrupts', length: SIZE }] });
  imageSha1 = sha1File(image);
  small = join(imgDir, 'small.img');
  await writeImage(small, { size: 12 * MiB, mode: '644', mtime: 1_700_000_000, sparse: false, layout: [{ kind: 'random', label: 'small', length: 12 * MiB }] });
  bundleDir = fresh('bundle');
  const b = await runCli('ec2-bundle-image', bundleArgs(bundleDir));
  expect(b.stderr).toBe('');
  expect(names(bundleDir)).toEqual(BUNDLE);
  server = await startS3rver();
  const up = await runCli('ec2-upload-bundle', uploadArgs('intr-source'), { env });
  expect(up.stderr).toBe('');
  expect(up.code).toBe(0);
});
afterAll(async () => {
  await server?.stop();
  work.cleanup();
});

type Command = 'ec2-bundle-image' | 'ec2-unbundle' | 'ec2-download-bundle';

/**
 * Runs a command writing into a fresh directory, freezes it once half the bytes are there (all of them still under
 * temporary names of its own: nothing final, the manifest not first) and delivers `sig`.
 */
async function halfWay(cmd: Command, args: (out: string) => string[], sig: NodeJS.Signals) {
  const out = fresh(cmd);
  const r = startCli(cmd, args(out), { env });
  await freezeWhen(r, () => bytesIn(out) >= HALF, 'half of the output was written');
  expect(allTemporariesOf(out, r.child.pid)).toBe(true);
  deliver(r, sig);
  return { out, pid: r.child.pid, res: await r.done };
}

function interruptedHalfWay(cmd: Command, args: (out: string) => string[], signals: NodeJS.Signals[]): void {
  for (const sig of signals) {
    it(`${sig} half-way: nothing left, exit ${EXIT[sig]}, one line`, async () => {
      const { out, res } = await halfWay(cmd, args, sig);
      expect(res.stderr).toBe(`interrupted by ${sig}: removed partial output\n`);
      expect(res.code).toBe(EXIT[sig]);
      expect(names(out)).toEqual([]);
    });
  }
}

/** SIGKILL half-way leaves the temporaries (nothing can remove them); the next run into the directory sweeps them. */
async function killedThenRunAgain(cmd: Command, args: (out: string) => string[], again = args): Promise<string> {
  const { out, pid, res } = await halfWay(cmd, args, 'SIGKILL');
  expect(res.signal).toBe('SIGKILL');
  expect(allTemporariesOf(out, pid)).toBe(true);
  const second = await runCli(cmd, again(out), { env });
  expect(second.stderr).toBe('');
  expect(second.code).toBe(0);
  return out;
}

describe('ec2-bundle-image', () => {
  interruptedHalfWay('ec2-bundle-image', bundleArgs, ['SIGINT', 'SIGTERM']);

  it('a run after a SIGKILL sweeps the temporaries the killed run left', async () => {
    // Any later run into the directory sweeps them (a small image keeps this short).
    const out = await killedThenRunAgain('ec2-bundle-image', bundleArgs, (d) => bundleArgs(d, small));
    expect(names(out)).toEqual(SMALL_BUNDLE);
  });

  it('a directory in the way of the manifest: exit 254, one line, no part under its name', async () => {
    const out = fresh('bundle-dir');
    mkdirSync(join(out, 'small.img.manifest.xml'));
    const r = await runCli('ec2-bundle-image', bundleArgs(out, small));
    expect(r.stderr).toBe(`ERROR: cannot create ${join(out, 'small.img.manifest.xml')}: a directory is in the way (EISDIR); move it away or choose another path; nothing was left under a final name\n`);
    expect(r.code).toBe(254);
    expect(names(out)).toEqual(['small.img.manifest.xml']);
    expect(names(join(out, 'small.img.manifest.xml'))).toEqual([]);
  });
});

describe('ec2-unbundle', () => {
  interruptedHalfWay('ec2-unbundle', unbundleArgs, ['SIGINT', 'SIGTERM', 'SIGHUP']);

  it('a run after a SIGKILL sweeps the temporary the killed run left', async () => {
    const out = await killedThenRunAgain('ec2-unbundle', unbundleArgs);
    expect(names(out)).toEqual([NAME]);
    expect(sha1File(join(out, NAME))).toBe(imageSha1);
  });
});

describe('ec2-download-bundle', () => {
  interruptedHalfWay('ec2-download-bundle', downloadArgs, ['SIGINT', 'SIGTERM']);

  it('a run after a SIGKILL sweeps the temporaries the killed run left', async () => {
    const out = await killedThenRunAgain('ec2-download-bundle', downloadArgs);
    expect(names(out)).toEqual(BUNDLE);
    for (const f of BUNDLE) expect(sha1File(join(out, f))).toBe(sha1File(join(bundleDir, f)));
  });

  it('a directory in the way of the manifest: exit 254, one line, no part left', async () => {
    const out = fresh('download-dir');
    mkdirSync(join(out, `${NAME}.manifest.xml`));
    const r = await runCli('ec2-download-bundle', downloadArgs(out), { env });
    expect(r.stderr).toBe(`ERROR: cannot create ${join(out, `${NAME}.manifest.xml`)}: a directory is in the way (EISDIR); move it away or choose another path; nothing was left under a final name\n`);
    expect(r.code).toBe(254);
    expect(names(out)).toEqual([`${NAME}.manifest.xml`]);
  });
});

describe('ec2-upload-bundle', () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} half-way: no manifest in the bucket, exit ${EXIT[sig]}, one line`, async () => {
      const bucket = `intr-up-${sig.toLowerCase()}`;
      const r = startCli('ec2-upload-bundle', uploadArgs(bucket), { env });
      await freezeWhen(r, () => (r.stdout().match(/^Uploaded /gm) ?? []).length >= 3, 'three parts were uploaded');
      deliver(r, sig);
      const res = await r.done;
      expect(res.stderr).toMatch(new RegExp(`^interrupted by ${sig}: the manifest was not uploaded \\([3-6] of 7 part\\(s\\) were uploaded to s3://${bucket}/\\); ` +
        'run ec2-upload-bundle again to finish, or ec2-delete-bundle to remove them\\n$'));
      expect(res.code).toBe(EXIT[sig]);
      const keys = await listKeys(checkClient(server.url), bucket);
      expect(keys).not.toContain(`${NAME}.manifest.xml`);
      expect(keys.every((k) => PARTS.includes(k))).toBe(true);
    });
  }
});
