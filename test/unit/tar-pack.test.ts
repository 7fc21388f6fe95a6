import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, statSync, truncateSync, openSync, readSync, closeSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { readCase, writeImage } from '../helpers/images.js';
import { gnuTarOf, writeTestFile, type TestFile } from '../helpers/tar-files.js';
import { TAR_CHUNK, createTarPack, describeImage } from '../../src/stream/tar-pack.js';

const CASES = ['tiny', 'multipart', 'sparse', 'sparse-enddata', 'options', 'realcert', 'manyparts'];

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'amitools-tarpack-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function packDigest(path: string, name: string): Promise<{ sha1: string; length: number }> {
  const src = await describeImage(path, name);
  const hash = createHash('sha1');
  let length = 0;
  for await (const chunk of createTarPack(src)) {
    hash.update(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  return { sha1: hash.digest('hex'), length };
}

describe('createTarPack reproduces the original bundles\' tar streams', () => {
  it.each(CASES)('%s', async (name) => {
    const c = readCase(name);
    const path = join(dir, c.image.file);
    await writeImage(path, c.image);
    const got = await packDigest(path, c.tar.member_name);
    expect(got).toEqual({ sha1: c.tar.sha1, length: c.tar.length });
    rmSync(path);
  });
});

const KiB = 1024;
const MiB = 1024 * KiB;
const many = (n: number, gap: number) => Array.from({ length: n }, (_, i) => ({ offset: i * gap, length: 4 * KiB * (1 + (i % 3)) }));

describe('createTarPack equals GNU tar byte for byte', () => {
  const cases: TestFile[] = [
    { name: 'x'.repeat(100), size: 3000, data: [{ offset: 0, length: 3000 }] },
    { name: 'n'.repeat(101), size: 700, data: [{ offset: 0, length: 700 }] },
    { name: `${'long-name-'.repeat(19)}.img`, size: 5000, data: [{ offset: 0, length: 5000 }], mode: 0o600 },
    { name: 'imägé-日本語.img', size: 2048, data: [{ offset: 0, length: 2048 }] },
    { name: 'é'.repeat(60), size: 10, data: [{ offset: 0, length: 10 }] }, // 120 bytes in UTF-8: a LongLink
    ...[1, 511, 512, 513, 1000001, 10240 - 1024, 10240 - 1023].map((size) => ({ name: `odd-${size}.bin`, size, data: [{ offset: 0, length: size }] })),
    { name: 'dense-zeros.img', size: 3 * MiB, data: [{ offset: MiB, length: 4 * KiB }] }, // allocated zeros: type 0
    { name: 'empty.img', size: 0, data: [] },
    { name: 'mode-0755.img', size: 100, data: [{ offset: 0, length: 100 }], mode: 0o755 },
    { name: 'mode-0600.img', size: 100, data: [{ offset: 0, length: 100 }], mode: 0o600 },
    { name: 'mode-6755.img', size: 100, data: [{ offset: 0, length: 100 }], mode: 0o6755 },
    { name: 'mode-1777.img', size: 100, data: [{ offset: 0, length: 100 }], mode: 0o1777 },
    { name: 'mtime-old.img', size: 100, data: [{ offset: 0, length: 100 }], mtime: 1 },
    { name: 'all-hole.img', size: 10 * MiB, data: [], sparse: true },
    { name: 'sparse-4.img', size: 8 * MiB, data: many(3, MiB), sparse: true }, // 3 regions + (size,0): no extension block
    { name: 'sparse-25.img', size: 32 * MiB, data: many(24, MiB), sparse: true }, // 25 entries: exactly one full extension block
    { name: 'sparse-26.img', size: 32 * MiB, data: many(25, MiB), sparse: true },
    { name: 'sparse-many.img', size: 64 * MiB, data: many(60, MiB), sparse: true }, // 61 entries: 3 extension blocks
    { name: 'sparse-end-aligned.img', size: 4 * MiB, data: [{ offset: MiB, length: 8 * KiB }, { offset: 4 * MiB - 8 * KiB, length: 8 * KiB }], sparse: true },
    { name: 'sparse-end-odd.img', size: 4 * MiB + 100, data: [{ offset: 4 * MiB, length: 100 }], sparse: true },
    { name: 'sparse-start.img', size: 4 * MiB, data: [{ offset: 0, length: 12 * KiB }], sparse: true },
    { name: `sparse-${'long'.repeat(30)}.img`, size: 4 * MiB, data: [{ offset: 2 * MiB, length: 4 * KiB }], sparse: true, mode: 0o640 },
  ];

  it.each(cases.map((c) => [c.name.length > 40 ? `${c.name.slice(0, 40)}… (${Buffer.byteLength(c.name)} bytes)` : c.name, c] as const))('%s', async (_label, f) => {
    const sub = mkdtempSync(join(dir, 'gnu-'));
    const path = writeTestFile(sub, f);
    const expected = gnuTarOf(sub, f.name);
    const src = await describeImage(path, f.name);
    expect(src.sparseMap !== undefined).toBe(f.sparse === true && f.size > 0);
    const ours = await buffer(createTarPack(src));
    expect(ours.length).toBe(expected.length);
    expect(ours.equals(expected)).toBe(true);
    rmSync(sub, { recursive: true });
  });

  it('after the first data chunk, every chunk but the last is one TAR_CHUNK of the stream, so the gzip stage can take it whole', async () => {
    for (const f of [
      { name: 'plain.img', size: 5 * MiB + 77, data: [{ offset: 0, length: 5 * MiB + 77 }] },
      { name: `${'long'.repeat(40)}.img`, size: 4 * MiB, data: [{ offset: 0, length: 4 * MiB }] }, // a LongLink header first
      // 30 regions (extension blocks after the header) of 256 KiB and more: chunks that span regions
      { name: 'sparse-30.img', size: 64 * MiB, data: Array.from({ length: 30 }, (_, i) => ({ offset: 2 * i * MiB, length: 256 * KiB + 4 * KiB * i })), sparse: true },
    ] satisfies TestFile[]) {
      const sub = mkdtempSync(join(dir, 'chunks-'));
      const src = await describeImage(writeTestFile(sub, f), f.name);
      let at = 0;
      const starts: number[] = [];
      for await (const chunk of createTarPack(src)) {
        if ((chunk as Buffer).length === TAR_CHUNK) starts.push(at);
        at += (chunk as Buffer).length;
      }
      expect(starts.length, f.name).toBeGreaterThan(1);
      expect(starts.every((s) => s % TAR_CHUNK === 0), f.name).toBe(true);
      rmSync(sub, { recursive: true });
    }
  });

  it('follows a symlink like tar -h, naming the member after the link', async () => {
    const sub = mkdtempSync(join(dir, 'link-'));
    writeTestFile(sub, { name: 'target.img', size: 9000, data: [{ offset: 0, length: 9000 }], mode: 0o600, mtime: 1500000000 });
    symlinkSync('target.img', join(sub, 'link.img'));
    const ours = await buffer(createTarPack(await describeImage(join(sub, 'link.img'), 'link.img')));
    expect(ours.equals(gnuTarOf(sub, 'link.img'))).toBe(true);
    rmSync(sub, { recursive: true });
  });

  it('errors clearly when the image is missing or not a regular file', async () => {
    await expect(describeImage(join(dir, 'nope.img'), 'nope.img')).rejects.toThrow(/cannot read image .*nope\.img: ENOENT/);
    await expect(describeImage(dir, 'x')).rejects.toThrow(/is not a regular file/);
  });

  it('errors when the file shrinks while it is read', async () => {
    const sub = mkdtempSync(join(dir, 'shrink-'));
    const path = writeTestFile(sub, { name: 'a.img', size: 3 * MiB, data: [{ offset: 0, length: 3 * MiB }] });
    const src = await describeImage(path, 'a.img');
    truncateSync(path, MiB);
    await expect(buffer(createTarPack(src))).rejects.toThrow(/a\.img shrank while it was being read/);
    rmSync(sub, { recursive: true });
  });
});

describe('sparse files beyond 8 GiB (base-256 numbers)', () => {
  it('GNU tar lists and extracts our member of a 9 GiB sparse file', async () => {
    const sub = mkdtempSync(join(dir, 'big-'));
    const size = 9 * 1024 * MiB + 4096 * 3;
    const f: TestFile = { name: 'big.img', size, sparse: true, data: [{ offset: MiB, length: 64 * KiB }, { offset: 8 * 1024 * MiB + 8 * KiB, length: 12 * KiB }, { offset: size - 4096, length: 4096 }] };
    const path = writeTestFile(sub, f);
    const src = await describeImage(path, 'big.img');
    expect(src.sparseMap).toEqual([...f.data, { offset: size, length: 0 }]);
    const tar = await buffer(createTarPack(src));
    expect(tar[483]).toBe(0x80); // realsize in base-256
    const tarPath = join(sub, 'big.tar');
    writeFileSync(tarPath, tar);
    // Same bytes as GNU tar itself.
    expect(tar.equals(gnuTarOf(sub, 'big.img'))).toBe(true);
    const listing = execFileSync('tar', ['-tvf', tarPath], { encoding: 'utf8' });
    expect(listing).toMatch(new RegExp(`-rw-r--r-- root/root\\s+${size} 2010-01-01 \\d\\d:\\d\\d big\\.img`));
    const out = join(sub, 'out');
    execFileSync('mkdir', [out]);
    execFileSync('tar', ['-xSf', tarPath, '-C', out]);
    const st = statSync(join(out, 'big.img'));
    expect(st.size).toBe(size);
    for (const r of f.data) expect(sha1Range(join(out, 'big.img'), r)).toBe(sha1Range(path, r));
    rmSync(sub, { recursive: true });
  });
});

function sha1Range(path: string, r: { offset: number; length: number }): string {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(r.length);
  readSync(fd, buf, 0, r.length, r.offset);
  closeSync(fd);
  return createHash('sha1').update(buf).digest('hex');
}
