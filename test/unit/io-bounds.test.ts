import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AmiToolsError } from '../../src/errors.js';
import { fileErrorAction, ioError } from '../../src/io-errors.js';
import { PART_SIZE, checkPartLayout, partLength } from '../../src/format/part-name.js';
import { openRegularFile } from '../../src/store/regular-file.js';
import { DirectoryStore } from '../../src/store/directory-store.js';
import { collectExactly } from '../../src/store/part-store.js';
import { scratch } from '../helpers/bundles.js';

const work = scratch('io-bounds');
afterAll(work.cleanup);
const errno = (code: string, syscall: string, path?: string) => Object.assign(new Error(`${code}: something, ${syscall}${path ? ` '${path}'` : ''}`), { code, syscall, path });

describe('part lengths from bundled_size', () => {
  it('every part is 10 MiB but the last, which holds the rest', () => {
    const bundled = 2 * PART_SIZE + 1195376;
    expect([0, 1, 2].map((i) => partLength(bundled, i))).toEqual([PART_SIZE, PART_SIZE, 1195376]);
    expect(partLength(PART_SIZE, 0)).toBe(PART_SIZE);
  });

  it('bundled_size must be ciphertext cut into exactly the listed parts, and fit the image size', () => {
    const check = (bundledSize: number, size: number, count: number) => () => checkPartLayout({ bundledSize, size, parts: Array(count).fill(0) }, 'm.xml');
    expect(check(2 * PART_SIZE + 1195376, 23 << 20, 3)).not.toThrow();
    expect(check(PART_SIZE, PART_SIZE - 16, 1)).not.toThrow();
    expect(check(16, 0, 1)).not.toThrow();
    expect(check(0, 0, 1)).toThrow(/^Invalid manifest 'm\.xml': <bundled_size> 0 is not a length of AES-128-CBC ciphertext/);
    expect(check(1000, 1 << 20, 1)).toThrow(/not a length of AES-128-CBC ciphertext/);
    expect(check(PART_SIZE + 16, 1 << 30, 1)).toThrow(/makes 2 parts of 10485760 bytes, but the manifest lists 1\.$/);
    expect(check(PART_SIZE, 1 << 30, 2)).toThrow(/makes 1 parts/);
    expect(check(200 * PART_SIZE, 1 << 20, 200)).toThrow(/more than an image of <size> 1048576 can bundle to/);
    expect(check(0, 0, 1)).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
  });
});

describe('local inputs are regular files', () => {
  const dir = join(work.dir, 'special');
  mkdirSync(dir);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  symlinkSync('/dev/zero', join(dir, 'zero'));
  mkdirSync(join(dir, 'sub'));

  it('a FIFO is refused at once: open(2) does not wait for a writer', async () => {
    const started = process.hrtime.bigint();
    await expect(openRegularFile(fifo, 'part')).rejects.toThrow(`part ${fifo} is a FIFO, not a regular file`);
    // A hang would be forever; a refusal takes microseconds. The second is only a generous bound.
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1000);
  });

  it('a FIFO part stops unbundle and upload (the directory store\'s precheck and read) within a second', async () => {
    const started = process.hrtime.bigint();
    await expect(new DirectoryStore(dir).precheck([{ name: 'fifo', size: 16 }])).rejects.toMatchObject({ code: 'IO_ERROR' });
    await expect(new DirectoryStore(dir).readPart('fifo', 16)).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1000);
  });

  it('a device behind a symlink, a directory, a missing file: each named, code IO_ERROR', async () => {
    await expect(openRegularFile(join(dir, 'zero'), 'part')).rejects.toThrow(/zero is a character device, not a regular file/);
    await expect(openRegularFile(join(dir, 'sub'), 'part')).rejects.toThrow(/sub is a directory, not a regular file/);
    await expect(openRegularFile(join(dir, 'none'), 'part')).rejects.toThrow(/^cannot read part .*none: it does not exist \(ENOENT\); check the path$/);
    await expect(openRegularFile(join(dir, 'none'), 'part')).rejects.toMatchObject({ code: 'IO_ERROR' });
  });

  it('a part is read up to its length and no further, whatever the stream behind it would give', async () => {
    let pulled = 0;
    const endless = Readable.from((function* () { for (;;) yield Buffer.alloc(1 << 20); })()).on('data', (c: Buffer) => { pulled += c.length; });
    await expect(collectExactly(endless, 3 << 20, 'part p.part.0')).rejects.toThrow(
      /^part p\.part\.0 is over 3145728 bytes long, but the manifest's bundled_size makes it 3145728 bytes/);
    expect(pulled).toBeLessThanOrEqual(5 << 20);
  });
});

describe('ioError: system errors become sentences naming the file and what to do', () => {
  it.each([
    ['ENOSPC', 'write', 'cannot write /d/x.part.0: the disk is full (ENOSPC); free some space and run again'],
    ['EISDIR', 'open', 'cannot write /d/x.part.0: a directory is in the way (EISDIR); move it away or choose another path'],
    ['EFBIG', 'write', 'cannot write /d/x.part.0: the file would be larger than the file system or the file size limit (ulimit -f) allows (EFBIG); raise the limit or choose another file system'],
    ['ENAMETOOLONG', 'open', 'cannot write /d/x.part.0: the name is too long for the file system (ENAMETOOLONG); use a shorter name or path'],
    ['EROFS', 'open', 'cannot write /d/x.part.0: the file system is read-only (EROFS); choose a writable location'],
    ['EACCES', 'open', 'cannot write /d/x.part.0: permission denied (EACCES); check its permissions, or run as a user allowed to'],
  ])('%s', (code, syscall, message) => {
    const e = ioError(errno(code, syscall, '/tmp/.x.part.0.123.tmp'), '/d/x.part.0', 'write');
    expect(e).toBeInstanceOf(AmiToolsError);
    expect(e.code).toBe('IO_ERROR');
    expect(e.message).toBe(message);
  });

  it('without a caller path, the error\'s own path (the destination of a rename)', () => {
    const rename = Object.assign(errno('EISDIR', 'rename', '/d/.tmp'), { dest: '/d/x.manifest.xml' });
    expect(ioError(rename, undefined, fileErrorAction(rename)!).message).toMatch(/^cannot write \/d\/x\.manifest\.xml: a directory is in the way \(EISDIR\)/);
    expect(ioError(new RangeError('Invalid string length'), '/d/m.xml', 'read').message).toBe('cannot read /d/m.xml: it is too large to be read into memory; check that it is the right file');
  });

  it('fileErrorAction picks file errors only: not sockets, not ours', () => {
    expect(fileErrorAction(errno('ENOSPC', 'write'))).toBe('write');
    expect(fileErrorAction(errno('EISDIR', 'open', '/x'))).toBe('open');
    expect(fileErrorAction(errno('ECONNRESET', 'read'))).toBeUndefined();
    expect(fileErrorAction(errno('EPIPE', 'write'))).toBeUndefined();
    expect(fileErrorAction(ioError(errno('ENOSPC', 'write'), '/x', 'write'))).toBeUndefined();
    expect(fileErrorAction(new RangeError('Invalid string length'))).toBe('read');
  });
});
