import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TarExtract, type ExtractedFile } from '../../src/stream/tar-extract.js';
import { createTarPack, describeImage } from '../../src/stream/tar-pack.js';
import { encodeMemberHeaders, trailerLength } from '../../src/format/tar-header.js';
import { writeTestFile, type TestFile } from '../helpers/tar-files.js';
import { ToolError } from '../../src/errors.js';

const KiB = 1024;
const UNBOUNDED = 2 ** 40; // these tests are about the format, not the manifest's size bound
const MiB = 1024 * KiB;

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'amitools-tarx-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha1 = (path: string) => createHash('sha1').update(readFileSync(path)).digest('hex');

async function extract(source: Readable | string, into: string): Promise<ExtractedFile[]> {
  const x = new TarExtract({ directory: into, imageSize: UNBOUNDED });
  try {
    await pipeline(typeof source === 'string' ? createReadStream(source, { highWaterMark: 64 * KiB }) : source, x);
    return await x.commit();
  } catch (err) {
    await x.abort();
    throw err;
  }
}

/** Small chunks of odd sizes, to exercise headers and maps split across writes. */
function dribble(buf: Buffer): Readable {
  const sizes = [1, 511, 7, 1024, 513, 4099, 100000];
  let pos = 0;
  let i = 0;
  return Readable.from((function* () {
    while (pos < buf.length) {
      const n = sizes[i++ % sizes.length];
      yield buf.subarray(pos, pos + n);
      pos += n;
    }
  })());
}

const FILES: TestFile[] = [
  { name: 'dense.img', size: 3 * MiB + 123, data: [{ offset: 0, length: 3 * MiB + 123 }], mode: 0o600, mtime: 1300000000 },
  { name: 'zeros-inside.img', size: 8 * MiB, data: [{ offset: 0, length: MiB }, { offset: 5 * MiB, length: 64 * KiB }], mode: 0o755 }, // dense, zeros become holes
  { name: 'sparse.img', size: 64 * MiB, data: Array.from({ length: 30 }, (_, i) => ({ offset: i * 2 * MiB + 4096, length: 8 * KiB })), sparse: true, mtime: 1262304000 },
  { name: 'hole-only.img', size: 16 * MiB, data: [], sparse: true },
  { name: 'empty.img', size: 0, data: [] },
  { name: `${'long-name-'.repeat(15)}.img`, size: 5000, data: [{ offset: 0, length: 5000 }], mode: 0o640 },
  { name: 'ünïcødé.img', size: 100, data: [{ offset: 0, length: 100 }] },
];

function checkSame(srcDir: string, outDir: string, f: TestFile): void {
  const a = statSync(join(srcDir, f.name));
  const b = statSync(join(outDir, f.name));
  expect(b.size).toBe(a.size);
  expect(sha1(join(outDir, f.name))).toBe(sha1(join(srcDir, f.name)));
  expect((b.mode & 0o7777).toString(8)).toBe((a.mode & 0o7777).toString(8));
  expect(b.mtimeMs).toBe(Math.floor(a.mtimeMs / 1000) * 1000);
  const dataBytes = f.data.reduce((n, r) => n + r.length, 0);
  // Holes restored: allocation close to the data, well below the size for files with holes.
  expect(b.blocks * 512).toBeLessThanOrEqual(dataBytes + f.data.length * 8 * KiB + 64 * KiB);
}

describe('TarExtract reads GNU tar archives', () => {
  let src: string;
  beforeAll(() => {
    src = join(dir, 'src');
    mkdirSync(src);
    for (const f of FILES) writeTestFile(src, f);
  });

  const variants: [string, string[]][] = [
    ['gnu', ['--format=gnu']],
    ['gnu -S', ['--format=gnu', '-S']],
    ['ustar', ['--format=ustar']],
    ['pax', ['--format=pax']],
    ['pax -S 0.0', ['--format=pax', '-S', '--sparse-version=0.0']],
    ['pax -S 0.1', ['--format=pax', '-S', '--sparse-version=0.1']],
    ['pax -S 1.0', ['--format=pax', '-S', '--sparse-version=1.0']],
    ['oldgnu -S', ['--format=oldgnu', '-S']],
  ];
  it.each(variants)('tar %s', async (label, flags) => {
    const names = FILES.map((f) => f.name).filter((n) => label !== 'ustar' || Buffer.byteLength(n) <= 100);
    const tarPath = join(dir, `${label.replace(/\W+/g, '_')}.tar`);
    execFileSync('tar', ['-c', ...flags, '-f', tarPath, '-C', src, ...names]);
    const out = mkdtempSync(join(dir, 'out-'));
    const files = await extract(label === 'gnu -S' ? dribble(readFileSync(tarPath)) : tarPath, out);
    expect(files.map((f) => f.name)).toEqual(names);
    for (const f of FILES.filter((x) => names.includes(x.name))) checkSame(src, out, f);
    expect(readdirSync(out).sort()).toEqual([...names].sort()); // no temporary files left
    rmSync(out, { recursive: true });
  });

  it('creates directory members and files inside them; abort removes what it created', async () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    writeTestFile(join(tree, 'a', 'b'), { name: 'f.img', size: 10000, data: [{ offset: 0, length: 10000 }] });
    const tarPath = join(dir, 'tree.tar');
    execFileSync('tar', ['-c', '--format=gnu', '-f', tarPath, '-C', tree, 'a']);
    const out = mkdtempSync(join(dir, 'out-'));
    const files = await extract(tarPath, out);
    expect(files).toEqual([{ name: join('a', 'b', 'f.img'), path: join(out, 'a', 'b', 'f.img'), size: 10000 }]);
    expect(sha1(join(out, 'a', 'b', 'f.img'))).toBe(sha1(join(tree, 'a', 'b', 'f.img')));
    // Aborted instead of committed: nothing stays behind.
    const out2 = mkdtempSync(join(dir, 'out-'));
    const x = new TarExtract({ directory: out2, imageSize: UNBOUNDED });
    await pipeline(createReadStream(tarPath), x);
    expect(readdirSync(join(out2, 'a', 'b'))[0]).toMatch(/^\.f\.img\.amitools-[0-9]+-[0-9a-f]{8}\.tmp$/);
    await x.abort();
    expect(readdirSync(out2)).toEqual([]);
  });

  it('refuses links with a clear error', async () => {
    const t = join(dir, 'links');
    mkdirSync(t);
    writeFileSync(join(t, 'f'), 'x');
    execFileSync('ln', ['-s', 'f', join(t, 'l')]);
    const tarPath = join(dir, 'links.tar');
    execFileSync('tar', ['-c', '--format=gnu', '-f', tarPath, '-C', t, 'l']);
    const out = mkdtempSync(join(dir, 'out-'));
    await expect(extract(tarPath, out)).rejects.toThrow("tar member 'l' is a symbolic link; only regular files and directories can be unbundled");
    expect(readdirSync(out)).toEqual([]);
  });
});

/** A one-member archive with the given (possibly hostile) name, built with our codec. */
function archiveNamed(name: string, data = Buffer.from('payload\n')): Buffer {
  const h = encodeMemberHeaders({ name, mode: 0o644, mtime: 1262304000, size: data.length });
  const body = Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
  return Buffer.concat([body, Buffer.alloc(trailerLength(body.length))]);
}

describe('TarExtract refuses unsafe or corrupt input', () => {
  it.each(['../x', '/abs/x', 'a/../../x', 'a/..', `${'d/'.repeat(60)}../../x`])('refuses %s before writing anything', async (name) => {
    const out = mkdtempSync(join(dir, 'out-'));
    const x = new TarExtract({ directory: out, imageSize: UNBOUNDED });
    const err = await pipeline(Readable.from([archiveNamed(name)]), x).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ToolError);
    expect((err as Error).message).toMatch(new RegExp(`^tar member '${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}' has (an absolute name|a '\\.\\.' component); refusing to extract it`));
    expect(readdirSync(out)).toEqual([]); // checked before abort(): nothing was written at all
    await x.abort();
    expect(readdirSync(out)).toEqual([]);
  });

  it('refuses a header with a bad checksum', async () => {
    const tar = archiveNamed('ok.img');
    tar[0] ^= 0x01; // 'o' → 'n': checksum no longer matches
    const out = mkdtempSync(join(dir, 'out-'));
    await expect(extract(Readable.from([tar]), out)).rejects.toThrow('tar header at byte 0: header checksum mismatch (corrupt or not a tar stream)');
    expect(readdirSync(out)).toEqual([]);
  });

  it('refuses a truncated stream and abort() removes the partial file', async () => {
    const tar = archiveNamed('big.img', Buffer.alloc(100000, 7));
    const out = mkdtempSync(join(dir, 'out-'));
    const x = new TarExtract({ directory: out, imageSize: UNBOUNDED });
    await expect(pipeline(Readable.from([tar.subarray(0, 60000)]), x)).rejects.toThrow("tar stream is truncated (ends in member 'big.img' at byte 60000)");
    expect(readdirSync(out)).toHaveLength(1); // the temporary file
    await x.abort();
    expect(readdirSync(out)).toEqual([]);
  });

  it('refuses commit() before the stream ended', async () => {
    const x = new TarExtract({ directory: dir, imageSize: UNBOUNDED });
    await expect(x.commit()).rejects.toThrow(/before the tar stream ended/);
  });
});

describe('round trip: createTarPack → TarExtract', () => {
  it.each(FILES.map((f) => [f.name.slice(0, 30), f] as const))('%s', async (_l, f) => {
    const src = mkdtempSync(join(dir, 'rt-'));
    const path = writeTestFile(src, f);
    const out = mkdtempSync(join(dir, 'out-'));
    const files = await extract(createTarPack(await describeImage(path, f.name)), out);
    expect(files).toEqual([{ name: f.name, path: join(out, f.name), size: f.size }]);
    checkSame(src, out, f);
  });
});
