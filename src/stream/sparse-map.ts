// The sparse map GNU tar -S would write: which 4 KiB blocks of the file hold data.
// Node has no SEEK_DATA/SEEK_HOLE, so we scan for all-zero 4 KiB blocks; that reproduces every fixture's digest.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ToolError } from '../errors.js';
import type { Region } from '../format/tar-header.js';

export type { Region } from '../format/tar-header.js';

const SCAN_BLOCK = 4096;
const CHUNK = 4 << 20; // a multiple of SCAN_BLOCK and of any O_DIRECT alignment
const ZERO = Buffer.alloc(CHUNK);

/** GNU tar's ST_IS_SPARSE: fewer 512-byte blocks allocated than the size needs. */
export function isSparse(st: { size: number; blocks: number }): boolean {
  return st.blocks < Math.ceil(st.size / 512);
}

/**
 * Whether buf[start, end) (at most 4 MiB) is all zeros. Three bytes read first settle nearly every block of data
 * without a call into the runtime: the test, run for every 4 KiB bundled or unbundled, costs half or less.
 */
export function isZero(buf: Buffer, start: number, end: number): boolean {
  if (end > start && (buf[start] !== 0 || buf[(start + end) >>> 1] !== 0 || buf[end - 1] !== 0)) return false;
  return buf.subarray(start, end).equals(ZERO.subarray(0, end - start));
}

/**
 * Data regions of the file's first `size` bytes: 4096-byte blocks from offset 0 that hold a non-zero byte,
 * neighbours merged, then the terminating (size, 0) entry GNU tar always writes.
 */
export async function scanDataRegions(path: string, size: number): Promise<Region[]> {
  const regions: Region[] = [];
  const reader = await ScanReader.open(path);
  try {
    // Two buffers so the next read runs while this chunk is scanned.
    const readAt = (i: number, pos: number) => {
      const len = Math.min(CHUNK, size - pos);
      return reader.read(i, pos).then(({ buf, bytesRead }) => ({ buf, bytesRead, len, pos }));
    };
    let next = size > 0 ? readAt(0, 0) : null;
    let which = 0;
    let pos = 0;
    while (next) {
      const { buf, bytesRead, len, pos: at } = await next;
      if (bytesRead < len) throw new ToolError(`${path} shrank while it was being scanned; bundle a file that is not in use`);
      pos += len;
      which ^= 1;
      next = pos < size ? readAt(which, pos) : null;
      if (isZero(buf, 0, len)) continue;
      for (let b = 0; b < len; b += SCAN_BLOCK) {
        const e = Math.min(b + SCAN_BLOCK, len);
        if (isZero(buf, b, e)) continue;
        const offset = at + b;
        const last = regions[regions.length - 1];
        if (last && last.offset + last.length === offset) last.length += e - b;
        else regions.push({ offset, length: e - b });
      }
    }
  } finally {
    await reader.close();
  }
  regions.push({ offset: size, length: 0 });
  return regions;
}

/**
 * Reads CHUNK-sized, CHUNK-aligned pieces with O_DIRECT when the filesystem allows it: buffered reads of holes
 * fill the page cache with zero pages (~0.4 GB/s on ext4) while direct reads of holes cost almost nothing.
 * O_DIRECT needs an aligned buffer, which JavaScript cannot ask for, so each buffer is over-allocated and the
 * aligned offset found by trial (EINVAL); if none works, or O_DIRECT is refused, reads fall back to buffered I/O.
 */
class ScanReader {
  private readonly raws = [Buffer.allocUnsafe(CHUNK + 4096), Buffer.allocUnsafe(CHUNK + 4096)];
  private readonly align = [0, 0];
  private buffered?: FileHandle;

  private constructor(private readonly path: string, private direct?: FileHandle) {}

  static async open(path: string): Promise<ScanReader> {
    const direct = constants.O_DIRECT ? await open(path, constants.O_RDONLY | constants.O_DIRECT).catch(() => undefined) : undefined;
    const r = new ScanReader(path, direct);
    if (!direct) r.buffered = await open(path, 'r');
    return r;
  }

  async read(i: number, pos: number): Promise<{ buf: Buffer; bytesRead: number }> {
    const raw = this.raws[i];
    if (this.direct) {
      for (let tries = 0; tries < 4096 / 8; tries++) {
        try {
          const k = this.align[i];
          const { bytesRead } = await this.direct.read(raw, k, CHUNK, pos);
          return { buf: raw.subarray(k, k + CHUNK), bytesRead };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
          this.align[i] = (this.align[i] + 8) % 4096; // allocations are at least 8-byte aligned
        }
      }
    }
    this.buffered ??= await open(this.path, 'r');
    const { bytesRead } = await this.buffered.read(raw, 0, CHUNK, pos);
    return { buf: raw.subarray(0, CHUNK), bytesRead };
  }

  async close(): Promise<void> {
    await this.direct?.close();
    await this.buffered?.close();
  }
}
