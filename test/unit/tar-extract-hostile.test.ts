// TarExtract on hostile tar streams: bounded by the manifest's size and fixed header limits, confined to the
// destination (no symlink under it followed, plain names only), and all or nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TarExtract, type ExtractedFile } from '../../src/stream/tar-extract.js';
import { AmiToolsError } from '../../src/errors.js';
import { archive, entry, paxEntry, paxRecord, rawHeader, sparseExtensions, pad } from '../helpers/tar-craft.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'amitools-tarh-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
/** A destination inside its own parent, so that anything written beside it shows. */
function fresh(): { parent: string; out: string } {
  const parent = join(dir, `c${n++}`);
  const out = join(parent, 'out');
  mkdirSync(out, { recursive: true });
  return { parent, out };
}

const BIG = 2 ** 40;

/** Extracts and commits; on failure aborts and returns the error. */
async function run(tar: Buffer | Buffer[], out: string, imageSize = BIG): Promise<ExtractedFile[] | AmiToolsError> {
  const x = new TarExtract({ directory: out, imageSize });
  try {
    await pipeline(Readable.from(Array.isArray(tar) ? tar : [tar]), x);
    return await x.commit();
  } catch (err) {
    await x.abort();
    if (!(err instanceof AmiToolsError)) throw err; // anything else is a bug
    return err;
  }
}

async function refused(tar: Buffer | Buffer[], out: string, pattern: RegExp, imageSize = BIG): Promise<AmiToolsError> {
  const r = await run(tar, out, imageSize);
  expect(r).toBeInstanceOf(AmiToolsError);
  const err = r as AmiToolsError;
  expect(err.message).toMatch(pattern);
  expect(err.message).not.toMatch(/[\x00-\x1f\x7f]/); // one printable line
  expect(readdirSync(out)).toEqual([]);
  return err;
}

const file = (name: string, data: Buffer | string, mode = 0o644) => entry({ name, mode }, data);

describe('bounded by the manifest size', () => {
  it('a member larger than the image is refused before anything is written', async () => {
    const { out } = fresh();
    const err = await refused(archive(file('x.img', Buffer.alloc(5000, 1))), out, /tar member 'x\.img' is 5000 bytes, more than the 4096-byte image the manifest states/, 4096);
    expect(err.code).toBe('TAR_INVALID');
  });

  it('members together larger than the image are refused, and the first is removed', async () => {
    const { out } = fresh();
    await refused(archive(file('a.img', Buffer.alloc(3000, 1)), file('b.img', Buffer.alloc(3000, 2))), out,
      /tar member 'b\.img' is 3000 bytes, with the 3000 bytes before it more than the 4096-byte image/, 4096);
  });

  it('a sparse member whose apparent size exceeds the image is refused at its header', async () => {
    const { out } = fresh();
    const h = rawHeader({ name: 's.img', size: 512, type: 'S', sparse: { realsize: 2 ** 40, map: [[0, 512]], extended: false } });
    await refused(archive(h, Buffer.alloc(512, 1)), out, /'s\.img' is 1099511627776 bytes, more than the 1048576-byte image/, 1 << 20);
  });

  it('a tar stream longer than the image needs is refused (trailing zeros, skipped data)', async () => {
    const { out } = fresh();
    const tar = archive(file('x.img', 'data'));
    await refused([tar, Buffer.alloc(20 << 20)], out, /the tar stream is longer than a 4-byte image needs/, 4);
    const { out: out2 } = fresh();
    await refused(archive(entry({ name: 'v', type: 'V' }, Buffer.alloc(20 << 20))), out2, /the tar stream is longer than a 4-byte image needs/, 4);
  });

  it('a legitimate tar of an image of exactly the manifest size unbundles', async () => {
    const { out } = fresh();
    const r = await run(archive(file('x.img', Buffer.alloc(4096, 7))), out, 4096);
    expect(r).toEqual([{ name: 'x.img', path: join(out, 'x.img'), size: 4096 }]);
  });
});

describe('bounded headers', () => {
  it('two pax extended headers for one member are refused: records never pile up', async () => {
    const { out } = fresh();
    const x = paxEntry(paxRecord('comment', 'a'.repeat(900)));
    await refused(archive(...Array(1000).fill(x), file('x.img', 'data')), out, /a second pax extended header for the same member/);
  });

  it('two long names for one member are refused', async () => {
    const { out } = fresh();
    const l = entry({ name: '././@LongLink', type: 'L' }, 'y.img\0');
    await refused(archive(l, l, file('x.img', 'data')), out, /a second long name for the same member/);
  });

  it('global headers do not accumulate: each key keeps its latest value', async () => {
    const { out } = fresh();
    const g = (t: number) => paxEntry(paxRecord('mtime', String(t)) + paxRecord('comment', 'c'.repeat(500)), 'g');
    const r = await run(archive(...Array.from({ length: 2000 }, (_, i) => g(1000 + i)), file('x.img', 'data')), out);
    expect(r).toHaveLength(1);
    expect(statSync(join(out, 'x.img')).mtimeMs).toBe(2999 * 1000);
  });

  it('a pax header or long name over its limit is refused from its header', async () => {
    const { out } = fresh();
    await refused(Buffer.concat([rawHeader({ name: 'p', size: 64 << 20, type: 'x' }), Buffer.alloc(1024)]), out, /pax header of 67108864 bytes is too large/);
    await refused(Buffer.concat([rawHeader({ name: 'p', size: 1 << 20, type: 'L' }), Buffer.alloc(1024)]), out, /long name of 1048576 bytes is too large/);
  });

  it('half a million pax records in one header are read without recursion', async () => {
    const { out } = fresh();
    const records = paxRecord('comment', 'x').repeat(500_000) + paxRecord('path', 'big.img');
    const r = await run(archive(paxEntry(records), file('ignored-name', 'data')), out);
    expect(r).toEqual([{ name: 'big.img', path: join(out, 'big.img'), size: 4 }]);
  });

  it('more than 1024 files and directories are refused', async () => {
    const { out } = fresh();
    await refused(archive(...Array.from({ length: 1100 }, (_, i) => file(`f${i}.img`, ''))), out, /more than 1024 files and directories \(at 'f1024\.img'\)/);
  });

  it('a member name twice is refused', async () => {
    const { out } = fresh();
    await refused(archive(file('x.img', 'a'), file('./x.img', 'b')), out, /tar member '\.\/x\.img' appears twice/);
  });
});

describe('sparse maps are capped by what the member can hold', () => {
  it('old GNU extension blocks with more regions than stored bytes: refused at the first entry too many', async () => {
    const { out } = fresh();
    const h = rawHeader({ name: 's.img', size: 10, type: 'S', sparse: { realsize: 1 << 20, map: [[0, 1], [2, 1], [4, 1], [6, 1]], extended: true } });
    // 100 000 extension blocks would follow; the entry holding the 11th byte ends it.
    const blocks = sparseExtensions(2_100_000, (i) => [8 + 2 * i, 1]);
    await refused([h, blocks], out, /tar member 's\.img': sparse map entry 10 holds more bytes than the member stores/);
  });

  it('regions out of order, overlapping, or past realsize are refused', async () => {
    for (const [map, pattern] of [
      [[[100, 10], [50, 10]], /entry 1 at offset 50 is out of order or overlaps/],
      [[[0, 10], [5, 10]], /entry 1 at offset 5 is out of order or overlaps/],
      [[[0, 10], [4090, 10]], /entry 1 ends at 4100, past the file's size/],
      [[[0, 0], [10, 20]], /entry 1 follows the zero-length entry/],
    ] as [[number, number][], RegExp][]) {
      const { out } = fresh();
      const stored = map.reduce((s, [, l]) => s + l, 0);
      const h = rawHeader({ name: 's.img', size: stored, type: 'S', sparse: { realsize: 4096, map, extended: false } });
      await refused(archive(h, Buffer.alloc(stored, 1), pad(stored)), out, pattern);
    }
  });

  it('a map holding fewer bytes than the member stores is refused', async () => {
    const { out } = fresh();
    const h = rawHeader({ name: 's.img', size: 1024, type: 'S', sparse: { realsize: 4096, map: [[0, 512]], extended: false } });
    await refused(archive(h, Buffer.alloc(1024, 1)), out, /sparse map holds 512 bytes but the member stores 1024/);
  });

  it('more than 2^20 entries are refused even when the sizes would allow them', async () => {
    const { out } = fresh();
    const entries = 2 ** 20 + 100;
    const h = rawHeader({ name: 's.img', size: entries, type: 'S', sparse: { realsize: 2 * entries, map: [[0, 1], [2, 1], [4, 1], [6, 1]], extended: true } });
    const blocks = sparseExtensions(entries - 4, (i) => [2 * (i + 4), 1]);
    await refused([h, blocks, Buffer.alloc(entries)], out, /sparse map entry 1048576 is more than the member can hold/);
  });

  it('many small regions are restored exactly, holes kept', async () => {
    const { out } = fresh();
    const count = 3000;
    const at = (i: number): [number, number] => [i * 10_000 + (i % 7), 100];
    const realsize = count * 10_000 + 5;
    const data = Buffer.alloc(count * 100);
    for (let i = 0; i < data.length; i++) data[i] = 1 + (i % 251);
    const h = rawHeader({ name: 's.img', size: data.length, type: 'S', sparse: { realsize, map: [0, 1, 2, 3].map(at), extended: true } });
    const r = await run(archive(h, sparseExtensions(count - 4, (i) => at(i + 4)), data, pad(data.length)), out);
    expect(r).toEqual([{ name: 's.img', path: join(out, 's.img'), size: realsize }]);
    const got = readFileSync(join(out, 's.img'));
    const want = Buffer.alloc(realsize);
    for (let i = 0; i < count; i++) data.copy(want, at(i)[0], i * 100, i * 100 + 100);
    expect(got.equals(want)).toBe(true);
    // Each 100-byte region lands in one or two 4 KiB blocks; the 10 000-byte strides leave holes between.
    expect(statSync(join(out, 's.img')).blocks * 512).toBeLessThanOrEqual(count * 2 * 4096);
  });

  it('a GNU sparse 1.0 map declaring more entries than the member holds is refused before it is read', async () => {
    const { out } = fresh();
    const pax = paxEntry(paxRecord('GNU.sparse.major', '1') + paxRecord('GNU.sparse.minor', '0') + paxRecord('GNU.sparse.name', 's.img') + paxRecord('GNU.sparse.realsize', '1000000'));
    const data = Buffer.concat([Buffer.from('1000000000\n'), Buffer.alloc(501)]);
    await refused(archive(pax, entry({ name: 'GNUSparseFile/s.img' }, data)), out, /GNU sparse map of 1000000000 entries is more than the member can hold/);
  });

  it('a GNU 0.0 map in a pax header with more entries than the member stores bytes is refused', async () => {
    const { out } = fresh();
    let records = paxRecord('GNU.sparse.size', '10000000');
    for (let i = 0; i < 100_000; i++) records += paxRecord('GNU.sparse.offset', String(i * 2)) + paxRecord('GNU.sparse.numbytes', '1');
    await refused(archive(paxEntry(records), file('s.img', 'abc')), out, /tar member 's\.img': sparse map of 100000 entries is more than the member can hold/);
  });
});

describe('confined to the destination', () => {
  it('a symlink inside the destination is not followed, for a file or a directory member', async () => {
    for (const tar of [
      archive(file('sub/x.img', 'evil')),
      archive(entry({ name: 'sub/', type: '5', mode: 0o777, mtime: 1000 }), file('sub/x.img', 'evil')),
      archive(entry({ name: 'sub/deeper/', type: '5', mode: 0o777, mtime: 1000 })),
    ]) {
      const { parent, out } = fresh();
      const outside = join(parent, 'outside');
      mkdirSync(outside);
      chmodSync(outside, 0o700);
      utimesSync(outside, 5000, 5000);
      symlinkSync(outside, join(out, 'sub'));
      const err = await run(tar, out);
      expect(err).toBeInstanceOf(AmiToolsError);
      expect((err as AmiToolsError).code).toBe('UNSAFE_NAME');
      expect((err as Error).message).toMatch(/would be written through '.*\/out\/sub', a symbolic link in the destination; refusing to follow it/);
      expect(readdirSync(outside)).toEqual([]);
      expect(statSync(outside).mode & 0o777).toBe(0o700);
      expect(statSync(outside).mtimeMs).toBe(5000 * 1000);
      expect(readdirSync(out)).toEqual(['sub']); // the link itself, untouched
      expect(lstatSync(join(out, 'sub')).isSymbolicLink()).toBe(true);
    }
  });

  it('a symlink at the final name is replaced, not followed', async () => {
    const { parent, out } = fresh();
    const target = join(parent, 'target');
    mkdirSync(target);
    symlinkSync(join(target, 'f'), join(out, 'x.img'));
    expect(await run(archive(file('x.img', 'data')), out)).toHaveLength(1);
    expect(lstatSync(join(out, 'x.img')).isFile()).toBe(true);
    expect(readdirSync(target)).toEqual([]);
  });

  it('directories it creates get their mode and mtime; existing ones keep theirs', async () => {
    const { out } = fresh();
    mkdirSync(join(out, 'old'));
    chmodSync(join(out, 'old'), 0o755);
    utimesSync(join(out, 'old'), 7000, 7000);
    const tar = archive(
      entry({ name: 'old/', type: '5', mode: 0o700, mtime: 1000 }), file('old/a.img', 'a'),
      entry({ name: 'new/', type: '5', mode: 0o750, mtime: 2000 }), file('new/b.img', 'b'),
    );
    expect(await run(tar, out)).toHaveLength(2);
    expect(statSync(join(out, 'old')).mode & 0o777).toBe(0o755);
    expect(statSync(join(out, 'new')).mode & 0o777).toBe(0o750);
    expect(statSync(join(out, 'new')).mtimeMs).toBe(2000 * 1000);
    expect(readFileSync(join(out, 'new', 'b.img'), 'utf8')).toBe('b');
  });

  it.each([
    ['an escape sequence', '\x1b]0;pwned\x07.img', /has a component '\\x1b\]0;pwned\\x07\.img' that is not a plain file name/],
    ['a newline', 'a\nb.img', /'a\\x0ab\.img'/],
    ['a backslash', 'a\\b.img', /not a plain file name/],
    ['a hidden name', 'dir/.bashrc', /component '\.bashrc' that is not a plain file name/],
    ['a dot-dot', 'a/../../x', /has a '\.\.' component/],
    ['an absolute name', '/etc/x', /has an absolute name/],
  ])('a member name with %s is refused before anything is written', async (_label, name, pattern) => {
    const { parent, out } = fresh();
    const err = await refused(archive(file(name, 'x')), out, pattern);
    expect(err.code).toBe('UNSAFE_NAME');
    expect(readdirSync(parent)).toEqual(['out']);
  });

  it('a regular-file member whose name ends with a slash is a directory, as in v7 archives', async () => {
    const { out } = fresh();
    expect(await run(archive(entry({ name: 'v7dir/', mode: 0o700 }), file('v7dir/x.img', 'x')), out)).toHaveLength(1);
    expect(statSync(join(out, 'v7dir')).isDirectory()).toBe(true);
    expect(statSync(join(out, 'v7dir')).mode & 0o777).toBe(0o700);
  });

  it('set-user-ID and sticky bits are dropped', async () => {
    const { out } = fresh();
    await run(archive(file('x.img', 'data', 0o6755)), out);
    expect(statSync(join(out, 'x.img')).mode & 0o7777).toBe(0o755);
  });
});

describe('all or nothing', () => {
  it('a failure after complete members leaves none of them, nor the directories made for them', async () => {
    const { parent, out } = fresh();
    const tar = archive(entry({ name: 'd/', type: '5' }), file('d/a.img', 'a'), file('b.img', 'b'), entry({ name: 'l', type: '2' }));
    await refused(tar, out, /tar member 'l' is a symbolic link/);
    expect(readdirSync(parent)).toEqual(['out']);
  });

  it('a commit that cannot complete takes back what it renamed', async () => {
    const { out } = fresh();
    const x = new TarExtract({ directory: out, imageSize: BIG });
    await pipeline(Readable.from([archive(file('a.img', 'a'), file('b.img', 'b'))]), x);
    mkdirSync(join(out, 'b.img')); // appears before commit
    await expect(x.commit()).rejects.toThrow(/cannot write '.*\/b\.img': a directory of that name is in the way/);
    expect(readdirSync(out)).toEqual(['b.img']);
    expect(existsSync(join(out, 'a.img'))).toBe(false);
    await x.abort(); // and again: nothing more to do
  });

  it('abort during extraction removes the member being written', async () => {
    const { out } = fresh();
    const x = new TarExtract({ directory: out, imageSize: BIG });
    const tar = archive(file('a.img', Buffer.alloc(3 << 20, 1)));
    await new Promise<void>((resolve) => x.write(tar.subarray(0, 1 << 20), () => resolve()));
    expect(readdirSync(out)).toHaveLength(1);
    await x.abort();
    x.destroy();
    expect(readdirSync(out)).toEqual([]);
  });
});
