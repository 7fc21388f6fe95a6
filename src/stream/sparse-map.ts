// The sparse map GNU tar -S would write: which 4 KiB blocks of the file hold data.
// Node has no SEEK_DATA/SEEK_HOLE, so we scan for all-zero 4 KiB blocks; that reproduces every fixture's digest.
import { open } from 'node:fs/promises';
import { ToolError } from '../cli/errors.js';
import type { Region } from '../format/tar-header.js';

export type { Region } from '../format/tar-header.js';

const SCAN_BLOCK = 4096;
const CHUNK = 4 << 20; // a multiple of SCAN_BLOCK
const ZERO = Buffer.alloc(CHUNK);

/** GNU tar's ST_IS_SPARSE: fewer 512-byte blocks allocated than the size needs. */
export function isSparse(st: { size: number; blocks: number }): boolean {
  return st.blocks < Math.ceil(st.size / 512);
}

function isZero(buf: Buffer, start: number, end: number): boolean {
  return buf.subarray(start, end).equals(ZERO.subarray(0, end - start));
}

/**
 * Data regions of the file's first `size` bytes: 4096-byte blocks from offset 0 that hold a non-zero byte,
 * neighbours merged, then the terminating (size, 0) entry GNU tar always writes.
 */
export async function scanDataRegions(path: string, size: number): Promise<Region[]> {
  const regions: Region[] = [];
  const fh = await open(path, 'r');
  try {
    // Two buffers so the next read runs while this chunk is scanned.
    const bufs = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
    const readAt = (i: number, pos: number) => {
      const len = Math.min(CHUNK, size - pos);
      return len > 0 ? fh.read(bufs[i], 0, len, pos).then((r) => ({ ...r, len, pos })) : null;
    };
    let next = readAt(0, 0);
    let which = 0;
    let pos = 0;
    while (next) {
      const r = await next;
      if (r.bytesRead !== r.len) throw new ToolError(`${path} shrank while it was being scanned; bundle a file that is not in use`);
      pos += r.len;
      which ^= 1;
      next = pos < size ? readAt(which, pos) : null;
      const buf = bufs[which ^ 1];
      if (isZero(buf, 0, r.len)) continue;
      for (let b = 0; b < r.len; b += SCAN_BLOCK) {
        const e = Math.min(b + SCAN_BLOCK, r.len);
        if (isZero(buf, b, e)) continue;
        const offset = r.pos + b;
        const last = regions[regions.length - 1];
        if (last && last.offset + last.length === offset) last.length += e - b;
        else regions.push({ offset, length: e - b });
      }
    }
  } finally {
    await fh.close();
  }
  regions.push({ offset: size, length: 0 });
  return regions;
}
