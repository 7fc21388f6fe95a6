import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSparse, scanDataRegions } from '../../src/stream/sparse-map.js';
import { writeTestFile } from '../helpers/tar-files.js';

const MiB = 1 << 20;
let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'amitools-sparse-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('isSparse', () => {
  it('is GNU tar\'s ST_IS_SPARSE', () => {
    expect(isSparse({ size: 0, blocks: 0 })).toBe(false);
    expect(isSparse({ size: 1, blocks: 8 })).toBe(false);
    expect(isSparse({ size: 4097, blocks: 8 })).toBe(true); // needs 9 blocks
    expect(isSparse({ size: 4096, blocks: 8 })).toBe(false);
    const p = writeTestFile(dir, { name: 'h.img', size: 10 * MiB, data: [{ offset: MiB, length: 4096 }], sparse: true });
    expect(isSparse(statSync(p))).toBe(true);
    const d = writeTestFile(dir, { name: 'd.img', size: 10 * MiB, data: [], sparse: false });
    expect(isSparse(statSync(d))).toBe(false);
  });
});

describe('scanDataRegions', () => {
  it('merges neighbouring 4 KiB data blocks and appends (size, 0)', async () => {
    const p = writeTestFile(dir, { name: 'a.img', size: 20 * MiB + 100, sparse: true, data: [
      { offset: 0, length: 8192 }, { offset: 8192, length: 4096 }, // neighbours: one region
      { offset: 4 * MiB + 4096, length: 10 }, // a partly used block counts whole
      { offset: 8 * MiB - 4096, length: 8192 }, // across a read chunk boundary
      { offset: 20 * MiB, length: 100 }, // ends with data, mid-block
    ] });
    expect(await scanDataRegions(p, statSync(p).size)).toEqual([
      { offset: 0, length: 12288 },
      { offset: 4 * MiB + 4096, length: 4096 },
      { offset: 8 * MiB - 4096, length: 8192 },
      { offset: 20 * MiB, length: 100 },
      { offset: 20 * MiB + 100, length: 0 },
    ]);
  });

  it('an all-hole file is just [(size, 0)]; allocated zero blocks are holes too', async () => {
    const p = writeTestFile(dir, { name: 'z.img', size: 5 * MiB, data: [], sparse: true });
    expect(await scanDataRegions(p, 5 * MiB)).toEqual([{ offset: 5 * MiB, length: 0 }]);
    const d = writeTestFile(dir, { name: 'dz.img', size: 5 * MiB, data: [{ offset: MiB, length: 1 }] });
    expect(await scanDataRegions(d, 5 * MiB)).toEqual([{ offset: MiB, length: 4096 }, { offset: 5 * MiB, length: 0 }]);
  });

  it('a single non-zero byte anywhere in a block makes it data', async () => {
    const p = join(dir, 'one.img');
    const fd = openSync(p, 'w');
    writeSync(fd, Buffer.alloc(3 * 4096));
    writeSync(fd, Buffer.from([1]), 0, 1, 2 * 4096 - 1);
    closeSync(fd);
    expect(await scanDataRegions(p, 3 * 4096)).toEqual([{ offset: 4096, length: 4096 }, { offset: 3 * 4096, length: 0 }]);
  });

  it('errors when the file is shorter than the size given', async () => {
    const p = writeTestFile(dir, { name: 's.img', size: MiB, data: [{ offset: 0, length: 10 }] });
    await expect(scanDataRegions(p, 2 * MiB)).rejects.toThrow(/s\.img shrank while it was being scanned/);
  });
});
