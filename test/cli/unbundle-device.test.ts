// Must show (issue 10, 3): ec2-unbundle -o DEVICE on loop devices: the device ends byte-identical to the image over
// its length (and untouched past it); --device-zeroed leaves the zero runs unwritten; a device that is mounted (itself
// or a partition of it) or too small is refused with one line before anything is written. Needs root and losetup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeImage } from '../helpers/images.js';
import { key, unmetPrerequisite } from '../helpers/paths.js';
import { runCli, type RunResult } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';

const MiB = 1 << 20;
const IMAGE_SIZE = 24 * MiB;
const FILL = 0xaa;
const skip = unmetPrerequisite('unbundle to a block device', { root: true, commands: ['losetup', 'mkfs.ext4', 'mount', 'umount'] });
const work = scratch('unbundle-device');
let image: Buffer;
let manifest: string;
let bundle: string;

const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

beforeAll(async () => {
  if (skip) return;
  const path = join(work.dir, 'disk.img');
  await writeImage(path, {
    size: IMAGE_SIZE, mode: '644', mtime: 1_700_000_000, sparse: true,
    layout: [
      { kind: 'random', label: 'unbundle-device-a', length: 2 * MiB, offset: 1 * MiB },
      { kind: 'text', label: 'unbundle-device-b', length: 1 * MiB + 1234, offset: 20 * MiB },
    ],
  });
  image = readFileSync(path);
  bundle = join(work.dir, 'bundle');
  mkdirSync(bundle);
  const b = await runCli('ec2-bundle-image', ['-i', path, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012',
    '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', bundle, '--batch']);
  expect(b.code, b.stderr).toBe(0);
  manifest = join(bundle, 'disk.img.manifest.xml');
});
afterAll(() => work.cleanup());

interface Loop { dev: string; backing: string; detach(): Buffer }
let n = 0;
/** A loop device over a fresh file of `size` bytes filled with FILL; detach() returns the file's bytes after. */
function loopDevice(size: number, o: { partitions?: boolean } = {}): Loop {
  const backing = join(work.dir, `loop${n++}.img`);
  writeFileSync(backing, Buffer.alloc(size, FILL));
  if (o.partitions) execFileSync('sfdisk', ['-q', backing], { input: 'label: dos\n,16M,L\n' });
  const dev = execFileSync('losetup', ['-f', '--show', ...(o.partitions ? ['-P'] : []), backing], { encoding: 'utf8' }).trim();
  let attached = true;
  const detach = () => {
    if (attached) execFileSync('losetup', ['-d', dev]);
    attached = false;
    return readFileSync(backing);
  };
  loops.push(detach);
  return { dev, backing, detach };
}
const loops: (() => Buffer)[] = [];
afterAll(() => { for (const d of loops) try { d(); } catch { /* already detached */ } });

/**
 * An ext4 filesystem on `dev`, mounted read-only at a fresh directory. Read-only and fully initialised, so the kernel
 * writes nothing to the device while it is mounted (a read-write mount journals and initialises inode tables lazily),
 * and a test can compare the device's bytes before and after.
 */
function mountIdleFilesystem(dev: string): string {
  execFileSync('mkfs.ext4', ['-q', '-E', 'lazy_itable_init=0,lazy_journal_init=0', dev]);
  const mnt = join(work.dir, `mnt${n++}`);
  mkdirSync(mnt);
  execFileSync('mount', ['-o', 'ro', dev, mnt]);
  return mnt;
}

const args = (dev: string, extra: string[] = []) => ['-m', manifest, '-k', key('user-key.pem'), '-s', bundle, '-o', dev, '--batch', ...extra];

/** Exit 254, one line on stderr matching `pattern`. */
function expectRefused(r: RunResult, pattern: RegExp): void {
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr.trimEnd()).toMatch(pattern);
  expect(r.code).toBe(254);
}

describe.skipIf(skip)('ec2-unbundle -o DEVICE', () => {
  it('writes every byte of the image, zero runs too, and nothing past its length', async () => {
    const loop = loopDevice(32 * MiB);
    const r = await runCli('ec2-unbundle', args(loop.dev));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Wrote disk.img (24.0 MiB) to ${loop.dev}.\nUnbundle complete.\n`);
    const after = loop.detach();
    expect(sha1(after.subarray(0, IMAGE_SIZE))).toBe(sha1(image));
    expect(after.subarray(IMAGE_SIZE).every((b) => b === FILL)).toBe(true);
  });

  it('--device-zeroed: the data regions are written, the zero runs left as they were', async () => {
    const loop = loopDevice(IMAGE_SIZE);
    const r = await runCli('ec2-unbundle', args(loop.dev, ['--device-zeroed']));
    expect(r.code, r.stderr).toBe(0);
    const after = loop.detach();
    // The pattern in the image's zero regions proves they were not written; the data regions were.
    expect(after.subarray(0, MiB).every((b) => b === FILL)).toBe(true);
    expect(after.subarray(3 * MiB, 20 * MiB).every((b) => b === FILL)).toBe(true);
    expect(after.subarray(MiB, 3 * MiB).equals(image.subarray(MiB, 3 * MiB))).toBe(true);
    expect(after.subarray(20 * MiB, 21 * MiB + 1234).equals(image.subarray(20 * MiB, 21 * MiB + 1234))).toBe(true);
    // Exactly the image's all-zero 4 KiB blocks were skipped: on a device that reads as zeros, that is the image.
    const expected = Buffer.from(image);
    for (let o = 0; o < IMAGE_SIZE; o += 4096) if (image.subarray(o, o + 4096).every((b) => b === 0)) expected.fill(FILL, o, o + 4096);
    expect(sha1(after)).toBe(sha1(expected));
  });

  it('refuses a device smaller than the image, writing nothing', async () => {
    const loop = loopDevice(16 * MiB);
    const r = await runCli('ec2-unbundle', args(loop.dev));
    expectRefused(r, new RegExp(`^ERROR: ${loop.dev} is ${16 * MiB} bytes, smaller than the ${IMAGE_SIZE}-byte image: nothing was written`));
    expect(loop.detach().every((b) => b === FILL)).toBe(true);
  });

  it('refuses a mounted device, writing nothing', async () => {
    const loop = loopDevice(32 * MiB);
    const mnt = mountIdleFilesystem(loop.dev);
    try {
      const before = sha1(readFileSync(loop.dev));
      const r = await runCli('ec2-unbundle', args(loop.dev));
      expectRefused(r, new RegExp(`^ERROR: ${loop.dev} is in use \\(${loop.dev.slice(5)} is mounted at ${mnt}\\): refusing to write an image over it; nothing was written$`));
      expect(sha1(readFileSync(loop.dev))).toBe(before);
    } finally {
      execFileSync('umount', [mnt]);
      loop.detach();
    }
  });

  it('refuses a device one of whose partitions is mounted', async (ctx) => {
    const loop = loopDevice(32 * MiB, { partitions: true });
    const part = `${loop.dev}p1`;
    if (!existsSync(part)) execFileSync('partx', ['-a', loop.dev]);
    if (!existsSync(part)) {
      process.stderr.write(`[skipped] the kernel made no partition device ${part} for a loop device here\n`);
      return ctx.skip();
    }
    const mnt = mountIdleFilesystem(part);
    try {
      const before = sha1(readFileSync(loop.dev));
      const r = await runCli('ec2-unbundle', args(loop.dev));
      expectRefused(r, new RegExp(`^ERROR: ${loop.dev} is in use \\(${part.slice(5)} is mounted at ${mnt}\\)`));
      expect(sha1(readFileSync(loop.dev))).toBe(before);
    } finally {
      execFileSync('umount', [mnt]);
      loop.detach();
    }
  });

  it('a corrupt first part: refused before anything reaches the device', async () => {
    const bad = join(work.dir, 'bad-bundle');
    mkdirSync(bad);
    for (const f of ['disk.img.manifest.xml', 'disk.img.part.0']) writeFileSync(join(bad, f), readFileSync(join(bundle, f)));
    const part = readFileSync(join(bad, 'disk.img.part.0'));
    part[100] ^= 0xff;
    writeFileSync(join(bad, 'disk.img.part.0'), part);
    const loop = loopDevice(IMAGE_SIZE);
    const r = await runCli('ec2-unbundle', ['-m', join(bad, 'disk.img.manifest.xml'), '-k', key('user-key.pem'), '-s', bad, '-o', loop.dev, '--batch']);
    expectRefused(r, /^ERROR: part disk\.img\.part\.0 in .* is corrupt: .*; the part is damaged/);
    expect(loop.detach().every((b) => b === FILL)).toBe(true);
  });

  it('an image whose tar digest does not match: exit 254, and the line says the device holds an invalid image', async () => {
    const bad = join(work.dir, 'digest-bundle');
    mkdirSync(bad);
    writeFileSync(join(bad, 'disk.img.part.0'), readFileSync(join(bundle, 'disk.img.part.0')));
    // Without --cert the signature is not checked: a manifest naming another digest unbundles to the end.
    const xml = readFileSync(manifest, 'utf8').replace(/(<digest algorithm='SHA1'>)[0-9a-f]{40}(<\/digest>\s*<size>)/, `$1${'0'.repeat(40)}$2`);
    expect(xml).toContain('0'.repeat(40));
    writeFileSync(join(bad, 'disk.img.manifest.xml'), xml);
    const loop = loopDevice(IMAGE_SIZE);
    const r = await runCli('ec2-unbundle', ['-m', join(bad, 'disk.img.manifest.xml'), '-k', key('user-key.pem'), '-s', bad, '-o', loop.dev, '--batch']);
    expectRefused(r, new RegExp(`^ERROR: the unbundled image's tar digest [0-9a-f]{40} does not match the manifest's 0{40}; the image written to ${loop.dev} is incomplete or invalid: do not use it$`));
    loop.detach();
  });
});
