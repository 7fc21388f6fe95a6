// The image sinks (file with holes, device, stream), the block writer under them, TarExtract's one-image mode, and
// the block device facts read from sysfs and mountinfo (on a made-up sysfs tree; real loop devices are in test/cli).
import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlockWriter, WRITE_BUFFER } from '../../src/stream/block-writer.js';
import { DeviceImageSink, FileImageSink, StreamImageSink, openImageSink, type ImageSink } from '../../src/stream/image-sink.js';
import { TarExtract } from '../../src/stream/tar-extract.js';
import { blockDeviceSize, blockDeviceUsers, majorMinor } from '../../src/volume/block-device.js';
import { ToolError } from '../../src/errors.js';
import { archive, entry } from '../helpers/tar-craft.js';
import { gnuTarOf, writeTestFile } from '../helpers/tar-files.js';
import { randomChunks } from '../helpers/images.js';
import { scratch } from '../helpers/bundles.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const work = scratch('image-sink');
afterAll(() => work.cleanup());
let n = 0;
const dir = () => { const d = join(work.dir, `d${n++}`); mkdirSync(d); return d; };
const random = (label: string, size: number) => Buffer.concat([...randomChunks(label, size)]);
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

/** An image of `size` bytes with these pieces (offset, data) and zeros elsewhere. */
function imageOf(size: number, pieces: [number, Buffer][]): Buffer {
  const img = Buffer.alloc(size);
  for (const [o, d] of pieces) d.copy(img, o);
  return img;
}

// Pieces that cross buffer boundaries, leave small and large gaps, start unaligned and end in a partial block.
const SIZE = 3 * WRITE_BUFFER + 20 * KiB + 17;
const PIECES: [number, Buffer][] = [
  [100, random('a', 5000)],
  [9000, random('b', 3 * KiB)],
  [WRITE_BUFFER - 700, random('c', 2 * KiB)],
  [2 * WRITE_BUFFER + 12345, random('d', WRITE_BUFFER)],
];
const IMAGE = imageOf(SIZE, PIECES);

/** Records what a BlockWriter writes: (position, bytes copied), so buffer reuse would show. */
function recorder(): { writes: { at: number; data: Buffer }[]; out: (buf: Buffer, from: number, to: number, at: number) => Promise<void> } {
  const writes: { at: number; data: Buffer }[] = [];
  return { writes, out: async (buf, from, to, at) => { await new Promise((r) => setImmediate(r)); writes.push({ at, data: Buffer.from(buf.subarray(from, to)) }); } };
}

describe('BlockWriter', () => {
  it('write mode: every byte from 0 to the size, in order, gaps and the tail as zeros', async () => {
    const r = recorder();
    const w = new BlockWriter(r.out, { zeros: 'write' });
    for (const [o, d] of PIECES) await w.write(d, o);
    await w.finish(SIZE);
    let pos = 0;
    for (const x of r.writes) { expect(x.at).toBe(pos); pos += x.data.length; }
    expect(pos).toBe(SIZE);
    expect(sha1(Buffer.concat(r.writes.map((x) => x.data)))).toBe(sha1(IMAGE));
  });

  it('skip mode: only the 4 KiB blocks holding data are written, each where it belongs', async () => {
    const r = recorder();
    const w = new BlockWriter(r.out, { zeros: 'skip' });
    for (const [o, d] of PIECES) await w.write(d, o);
    await w.finish(SIZE);
    const out = Buffer.alloc(SIZE);
    for (const x of r.writes) x.data.copy(out, x.at);
    expect(sha1(out)).toBe(sha1(IMAGE));
    const written = r.writes.reduce((s, x) => s + x.data.length, 0);
    expect(written).toBeLessThan(WRITE_BUFFER + 40 * KiB); // not the zeros
    for (const x of r.writes) {
      for (let o = 0; o < x.data.length; o += 4096) {
        const blockStart = Math.max(o, 0);
        expect(x.data.subarray(blockStart, blockStart + 4096).some((b) => b !== 0), `block at ${x.at + o}`).toBe(true);
      }
    }
  });

  it('skip mode: a block is data if any one byte is not zero, wherever that byte is', async () => {
    const r = recorder();
    const w = new BlockWriter(r.out, { zeros: 'skip' });
    const offsets = [0, 1, 2047, 2048, 2049, 4094, 4095];
    const blocks = Buffer.alloc(offsets.length * 2 * 4096);
    offsets.forEach((o, k) => { blocks[k * 2 * 4096 + o] = 0x5a; }); // one byte in every other block
    await w.write(blocks, 0);
    await w.finish(blocks.length);
    expect(r.writes.map((x) => [x.at, x.data.length])).toEqual(offsets.map((_, k) => [k * 2 * 4096, 4096]));
    for (const x of r.writes) expect(x.data.equals(blocks.subarray(x.at, x.at + 4096))).toBe(true);
  });

  it('write mode refuses a piece that goes back over what was written', async () => {
    const w = new BlockWriter(recorder().out, { zeros: 'write' });
    await w.write(Buffer.alloc(10, 1), 100);
    await expect(w.write(Buffer.alloc(10, 1), 105)).rejects.toThrow(/overlaps/);
  });
});

describe('FileImageSink', () => {
  it('writes under a temporary name, then gives the name with holes, the mode and the time', async () => {
    const d = dir();
    const path = join(d, 'image.raw');
    writeFileSync(path, 'old contents');
    const sink = await FileImageSink.create(path);
    expect(sink.revocable).toBe(true);
    for (const [o, data] of PIECES) await sink.write(data, o);
    expect(readFileSync(path, 'utf8')).toBe('old contents');
    expect(readdirSync(d).filter((f) => f.endsWith('.tmp'))).toHaveLength(1);
    await sink.finish(SIZE, { mode: 0o640, mtime: 1_600_000_000 });
    expect(readdirSync(d)).toEqual(['image.raw']);
    const st = statSync(path);
    expect(st.size).toBe(SIZE);
    expect(st.mode & 0o777).toBe(0o640);
    expect(Math.round(st.mtimeMs / 1000)).toBe(1_600_000_000);
    expect(st.blocks * 512).toBeLessThan(WRITE_BUFFER + 100 * KiB);
    expect(sha1(readFileSync(path))).toBe(sha1(IMAGE));
  });

  it('abort removes the temporary file and leaves what was there', async () => {
    const d = dir();
    const path = join(d, 'image.raw');
    writeFileSync(path, 'keep me');
    const sink = await FileImageSink.create(path);
    await sink.write(random('x', MiB), 0);
    await sink.abort();
    await sink.abort();
    expect(readdirSync(d)).toEqual(['image.raw']);
    expect(readFileSync(path, 'utf8')).toBe('keep me');
  });
});

describe('DeviceImageSink (over a regular file here)', () => {
  it('writes the zero runs too, and nothing past the size it was opened for', async () => {
    const d = dir();
    const path = join(d, 'dev');
    writeFileSync(path, Buffer.alloc(SIZE + 8192, 0xaa));
    const sink = new DeviceImageSink(path, await open(path, 'r+'), SIZE, false);
    expect(sink.revocable).toBe(false);
    for (const [o, data] of PIECES) await sink.write(data, o);
    await sink.finish(SIZE);
    const after = readFileSync(path);
    expect(sha1(after.subarray(0, SIZE))).toBe(sha1(IMAGE));
    expect(after.subarray(SIZE).every((b) => b === 0xaa)).toBe(true);
  });

  it('zeroed: leaves the all-zero blocks as they were', async () => {
    const d = dir();
    const path = join(d, 'dev');
    writeFileSync(path, Buffer.alloc(SIZE, 0xaa));
    const sink = new DeviceImageSink(path, await open(path, 'r+'), SIZE, true);
    for (const [o, data] of PIECES) await sink.write(data, o);
    await sink.finish(SIZE);
    const after = readFileSync(path);
    // Where the image is zero the old bytes may stay (the device reads as zeros there); every all-zero 4 KiB block does.
    expect(after.every((b, i) => b === IMAGE[i] || (IMAGE[i] === 0 && b === 0xaa))).toBe(true);
    for (let o = 0; o + 4096 <= SIZE; o += 4096) {
      if (IMAGE.subarray(o, o + 4096).every((b) => b === 0)) expect(after.subarray(o, o + 4096).every((b) => b === 0xaa), `block at ${o}`).toBe(true);
    }
    expect(after.subarray(9000, 9000 + 3 * KiB).equals(PIECES[1]![1])).toBe(true);
  });

  it('refuses a piece past the image size', async () => {
    const d = dir();
    const path = join(d, 'dev');
    writeFileSync(path, Buffer.alloc(8192));
    const sink = new DeviceImageSink(path, await open(path, 'r+'), 4096, false);
    await expect(sink.write(Buffer.alloc(10, 1), 4090)).rejects.toThrow(/refusing to write past byte 4096/);
    await sink.abort();
  });
});

describe('StreamImageSink', () => {
  it('every byte in order to a slow reader that keeps the chunks (a PassThrough does): they are copies', async () => {
    const kept: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) { kept.push(chunk); setTimeout(cb, 1); },
    });
    const sink = new StreamImageSink('test', slow);
    for (const [o, data] of PIECES) await sink.write(data, o);
    await sink.finish(SIZE);
    expect(sha1(Buffer.concat(kept))).toBe(sha1(IMAGE));
  });

  it('a reader that went away fails the write with one clear sentence', async () => {
    const gone = new Writable({ write(_c, _e, cb) { cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })); } });
    gone.on('error', () => {});
    const sink = new StreamImageSink('stdout', gone);
    await sink.write(Buffer.alloc(10, 1), 0);
    await expect(sink.finish(10)).rejects.toThrow(/^the reader of stdout went away before the image was complete$/);
  });
});

describe('openImageSink', () => {
  it('- is the given stdout; a character device is a stream; a new or existing path is a file; a directory is refused', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const s = await openImageSink('-', { imageSize: 10, stdout: out });
    expect(s).toBeInstanceOf(StreamImageSink);
    await s.write(Buffer.from('hi'), 3);
    await s.finish(8);
    expect(Buffer.concat(chunks)).toEqual(Buffer.from([0, 0, 0, 0x68, 0x69, 0, 0, 0]));

    const devNull = await openImageSink('/dev/null', { imageSize: 10 });
    expect(devNull).toBeInstanceOf(StreamImageSink);
    await devNull.write(Buffer.alloc(5, 1), 0);
    await devNull.finish(10);

    const d = dir();
    const f = await openImageSink(join(d, 'new.img'), { imageSize: 10 });
    expect(f).toBeInstanceOf(FileImageSink);
    await f.abort();
    expect(readdirSync(d)).toEqual([]);
    await expect(openImageSink(d, { imageSize: 10 })).rejects.toThrow(/is a directory: give a file, a block device or - \(stdout\)/);
    await expect(openImageSink(join(d, 'no', 'such'), { imageSize: 10 })).rejects.toThrow(ToolError);
  });
});

/** A sink that records calls (and what was written, as an image). */
function recordingSink(size: number): ImageSink & { calls: string[]; image: Buffer } {
  const s = {
    name: 'rec', revocable: false, calls: [] as string[], image: Buffer.alloc(size),
    write: async (data: Buffer, offset: number) => { data.copy(s.image, offset); },
    finish: async (sz: number, attrs?: { mode?: number; mtime?: number }) => { s.calls.push(`finish ${sz} ${attrs?.mode?.toString(8)} ${attrs?.mtime}`); },
    abort: async () => { s.calls.push('abort'); },
  };
  return s;
}

describe('TarExtract into a sink', () => {
  it('the one member of a GNU sparse archive: its bytes, then finish with its size, mode and time only at commit', async () => {
    const d = dir();
    writeTestFile(d, { name: 'disk.img', size: 9 * MiB, data: [{ offset: 4096, length: 64 * KiB }, { offset: 6 * MiB, length: MiB }], sparse: true, mode: 0o600, mtime: 1_500_000_000 });
    const sink = recordingSink(9 * MiB);
    const x = new TarExtract({ sink, imageSize: 9 * MiB });
    await pipeline(Readable.from([gnuTarOf(d, 'disk.img')]), x);
    expect(sink.calls).toEqual([]);
    expect(await x.commit()).toEqual([{ name: 'disk.img', path: 'rec', size: 9 * MiB }]);
    expect(sink.calls).toEqual(['finish 9437184 600 1500000000']);
    expect(sha1(sink.image)).toBe(sha1(readFileSync(join(d, 'disk.img'))));
  });

  const refused = async (tar: Buffer, message: RegExp) => {
    const sink = recordingSink(MiB);
    const x = new TarExtract({ sink, imageSize: MiB });
    await expect(pipeline(Readable.from([tar]), x)).rejects.toThrow(message);
    await x.abort();
    expect(sink.calls).toEqual(['abort']);
  };

  it('refuses a second file, a directory, and an archive without a file', async () => {
    await refused(archive(entry({ name: 'a.img' }, 'aaaa'), entry({ name: 'b.img' }, 'bbbb')),
      /the bundle holds a second file 'b\.img' after 'a\.img'; writing the image to one file, device or stdout needs exactly one regular file/);
    await refused(archive(entry({ name: 'dir/', type: '5' }), entry({ name: 'dir/a.img' }, 'aaaa')), /the bundle holds a directory 'dir\/'/);
    await refused(archive(), /the tar stream holds no file/);
  });

  it('needs a directory or a sink', () => {
    expect(() => new TarExtract({ imageSize: 1 })).toThrow(TypeError);
    expect(() => new TarExtract({ imageSize: 1, directory: '.', sink: recordingSink(1) })).toThrow(TypeError);
  });
});

describe('block device facts', () => {
  it('majorMinor decodes Linux device numbers, large minors and majors included', () => {
    const makedev = (major: number, minor: number) =>
      (minor & 0xff) + (major & 0xfff) * 256 + Math.floor(minor / 256) * 2 ** 20 + Math.floor(major / 4096) * 2 ** 44;
    expect(majorMinor(makedev(7, 0))).toBe('7:0');
    expect(majorMinor(makedev(259, 1))).toBe('259:1');
    expect(majorMinor(makedev(8, 256))).toBe('8:256');
    expect(majorMinor(makedev(4100, 70000))).toBe('4100:70000');
  });

  it('reads the size and the users (mounts of partitions, holders, swap) from sysfs, mountinfo and /proc/swaps', async () => {
    const root = dir();
    const sysfs = join(root, 'sys');
    const node = join(sysfs, 'devices', 'virtual', 'block', 'loop9');
    mkdirSync(join(node, 'holders'), { recursive: true });
    mkdirSync(join(node, 'loop9p1', 'holders'), { recursive: true });
    mkdirSync(join(node, 'queue'));
    writeFileSync(join(node, 'size'), '2048\n');
    writeFileSync(join(node, 'loop9p1', 'partition'), '1\n');
    writeFileSync(join(node, 'loop9p1', 'dev'), '259:4\n');
    mkdirSync(join(node, 'holders', 'dm-3'));
    mkdirSync(join(sysfs, 'dev', 'block'), { recursive: true });
    symlinkSync(node, join(sysfs, 'dev', 'block', '7:9'));
    const mountinfo = join(root, 'mountinfo');
    writeFileSync(mountinfo, [
      '22 27 0:21 / /proc rw,relatime - proc proc rw',
      '42 27 259:4 / /mnt/with\\040space rw,relatime - ext4 /dev/loop9p1 rw',
      '43 27 7:10 / /mnt/other rw,relatime - ext4 /dev/loop10 rw',
    ].join('\n') + '\n');
    const swaps = join(root, 'swaps');
    writeFileSync(swaps, 'Filename\tType\tSize\tUsed\tPriority\n');
    const rdev = 7 * 256 + 9;
    expect(await blockDeviceSize(rdev, sysfs)).toBe(MiB);
    expect(await blockDeviceUsers(rdev, { sysfs, mountinfo, swaps })).toEqual(['loop9 is held by dm-3', 'loop9p1 is mounted at /mnt/with space']);
    expect(await blockDeviceUsers(7 * 256 + 10, { sysfs, mountinfo, swaps })).toEqual(['7:10 is mounted at /mnt/other']);
    expect(existsSync(join(sysfs, 'dev', 'block', '7:10'))).toBe(false);
  });
});
