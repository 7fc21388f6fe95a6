// Compression of ec2-bundle-image (and so ec2-bundle-vol): every level and the stored segments open with the
// original's path (openssl enc -d | gunzip | tar -x) and with ours, incompressible data stays its size, the gzip
// stream is one member, and 8 threads give the bytes 2 threads give within the memory bound.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { crc32, inflateRawSync } from 'node:zlib';
import { field, opensslDecryptHex, partEntries, scratch } from '../helpers/bundles.js';
import { textChunks, sha1File } from '../helpers/images.js';
import { key, ROOT } from '../helpers/paths.js';
import { runCli, runProcess } from '../helpers/run.js';

const work = scratch('bundle-compression');
afterAll(work.cleanup);
const MiB = 1024 * 1024;
const KEY_FLAGS = ['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--batch'];

type Kind = 'random' | 'text' | 'zeros';

/** Writes an image of the given pieces: AES-CTR keystream (incompressible), numbered text lines, written zeros. */
async function writeImage(path: string, pieces: Array<[Kind, number]>): Promise<string> {
  const seed = createHash('sha256').update(path).digest();
  const ctr = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16));
  const fh = await open(path, 'w');
  try {
    for (const [kind, n] of pieces) {
      if (kind === 'text') for (const b of textChunks(path, n)) await fh.write(b);
      else for (let left = n; left > 0; left -= MiB) {
        const zeros = Buffer.alloc(Math.min(MiB, left));
        await fh.write(kind === 'zeros' ? zeros : ctr.update(zeros));
      }
    }
  } finally {
    await fh.close();
  }
  return path;
}

async function bundle(image: string, name: string, flags: string[] = []): Promise<string> {
  const out = join(work.dir, name);
  mkdirSync(out);
  const r = await runCli('ec2-bundle-image', ['-i', image, '-d', out, ...KEY_FLAGS, ...flags]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return out;
}

/** The bundle's key and IV (RSA-decrypted with openssl) and its parts in order. */
function secrets(out: string): { keyHex: string; ivHex: string; parts: string[]; xml: string } {
  const xml = readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('.manifest.xml'))!), 'utf8');
  return {
    xml,
    keyHex: opensslDecryptHex(field(xml, 'user_encrypted_key'), key('user-key.pem'), work.dir),
    ivHex: opensslDecryptHex(field(xml, 'user_encrypted_iv'), key('user-key.pem'), work.dir),
    parts: partEntries(xml).map((p) => join(out, p.filename)),
  };
}

/** The gzip stream inside a bundle, decrypted by openssl. */
function gzipStream(out: string): Buffer {
  const { keyHex, ivHex, parts } = secrets(out);
  const quoted = parts.map((p) => `'${p}'`).join(' ');
  return execSync(`cat ${quoted} | openssl enc -d -aes-128-cbc -K ${keyHex} -iv ${ivHex}`, { shell: '/bin/bash', maxBuffer: 1024 * MiB });
}

/** One gzip member: the header, one deflate stream ending right before the trailer, whose CRC-32 and size match. */
function expectSingleMember(gz: Buffer, tarSha1: string): void {
  expect(gz.subarray(0, 4).toString('hex')).toBe('1f8b0800');
  const body = gz.subarray(10, gz.length - 8);
  const { buffer, engine } = inflateRawSync(body, { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
  expect(engine.bytesWritten).toBe(body.length);
  expect(gz.readUInt32LE(gz.length - 8)).toBe(crc32(buffer));
  expect(gz.readUInt32LE(gz.length - 4)).toBe(buffer.length % 2 ** 32);
  expect(createHash('sha1').update(buffer).digest('hex')).toBe(tarSha1);
}

/** openssl enc -d | gunzip | tar -x, the original's way, and ec2-unbundle: both give the image back. */
async function expectBothUnbundles(out: string, image: string): Promise<void> {
  const { keyHex, ivHex, parts } = secrets(out);
  const member = basename(image);
  const viaTools = join(out, 'tools');
  mkdirSync(viaTools);
  execSync(`cat ${parts.map((p) => `'${p}'`).join(' ')} | openssl enc -d -aes-128-cbc -K ${keyHex} -iv ${ivHex} | gunzip | tar -x -C '${viaTools}'`, { shell: '/bin/bash' });
  expect(sha1File(join(viaTools, member))).toBe(sha1File(image));
  const viaOurs = join(out, 'ours');
  mkdirSync(viaOurs);
  const u = await runCli('ec2-unbundle', ['-m', join(out, `${member}.manifest.xml`), '-k', key('user-key.pem'), '-s', out, '-d', viaOurs, '--batch']);
  expect(u.stderr).toBe('');
  expect(u.code).toBe(0);
  expect(sha1File(join(viaOurs, member))).toBe(sha1File(image));
  rmSync(viaTools, { recursive: true });
  rmSync(viaOurs, { recursive: true });
}

describe('ec2-bundle-image --compression-level', () => {
  let image: string;
  beforeAll(async () => {
    image = await writeImage(join(work.dir, 'mixed.img'), [['text', 1.5 * MiB], ['random', 1.5 * MiB + 4321], ['zeros', MiB], ['text', 700_000]]);
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])('level %i: one gzip member that gunzip and our unbundle read (incompressible segments stored)', async (level) => {
    const out = await bundle(image, `level-${level}`, ['--compression-level', String(level)]);
    const gz = gzipStream(out);
    expectSingleMember(gz, field(secrets(out).xml, 'digest'));
    // The header's XFL is gzip(1)'s for the level: 2 at 9, 4 at 0 and 1.
    expect(gz[8]).toBe(level === 9 ? 2 : level <= 1 ? 4 : 0);
    const size = statSync(image).size;
    if (level === 0) expect(gz.length).toBeGreaterThan(size);
    else expect(gz.length).toBeLessThan(size * 0.5);
    await expectBothUnbundles(out, image);
  });

  it('a bundle of pseudo-random data is within 0.1% of its input, at the default level and at 9', async () => {
    const image = await writeImage(join(work.dir, 'random.img'), [['random', 24 * MiB + 777]]);
    for (const level of [undefined, 9]) {
      const out = await bundle(image, `random-${level ?? 'default'}`, level === undefined ? [] : ['--compression-level', String(level)]);
      const bundled = Number(field(secrets(out).xml, 'bundled_size'));
      expect(bundled / statSync(image).size).toBeLessThan(1.001);
      expectSingleMember(gzipStream(out), field(secrets(out).xml, 'digest'));
      await expectBothUnbundles(out, image);
    }
  });

  it('refuses a level outside 0-9 and a thread count under 1', async () => {
    const image = await writeImage(join(work.dir, 'small.img'), [['text', 10_000]]);
    for (const [flag, value, reason] of [
      ['--compression-level', '10', 'from 0 to 9'], ['--compression-level', '-1', 'from 0 to 9'], ['--compression-level', 'fast', 'from 0 to 9'],
      ['--threads', '0', 'from 1 to 1024'], ['--threads', '1.5', 'from 1 to 1024'],
    ]) {
      const r = await runCli('ec2-bundle-image', ['-i', image, '-d', work.dir, ...KEY_FLAGS, flag!, value!]);
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n')[0]).toBe(`${flag} has invalid value '${value}': must be a whole number ${reason}`);
    }
  });
});

describe('ec2-bundle-image --threads', () => {
  it('8 threads on this machine write the gzip stream 2 threads write, in bounded memory (peak RSS < 200 MB, +16 MB a thread)', async () => {
    const image = await writeImage(join(work.dir, 'threads.img'), [['random', 64 * MiB], ['text', 64 * MiB], ['zeros', 64 * MiB], ['random', 32 * MiB]]);
    const peak: Record<number, number> = {};
    const streams: Record<number, Buffer> = {};
    let digest = '';
    for (const threads of [2, 8]) {
      const out = join(work.dir, `threads-${threads}`);
      mkdirSync(out);
      const usage = join(work.dir, `threads-${threads}.rss`);
      const r = await runProcess('/usr/bin/time', ['-f', '%M', '-o', usage, process.execPath, join('bin', 'ec2-bundle-image.js'), '-i', image, '-d', out, ...KEY_FLAGS, '--threads', String(threads)],
        { cwd: ROOT });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      peak[threads] = Number(readFileSync(usage, 'utf8').trim().split('\n').at(-1)) * 1024;
      streams[threads] = gzipStream(out);
      digest = field(secrets(out).xml, 'digest');
      rmSync(out, { recursive: true });
    }
    expect(streams[8]!.equals(streams[2]!)).toBe(true);
    expectSingleMember(streams[8]!, digest);
    expect(peak[2]).toBeLessThan(200e6);
    expect(peak[8]! - peak[2]!).toBeLessThanOrEqual(6 * 16e6);
  }, 300_000);
});
