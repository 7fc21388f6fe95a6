// The one-member tar stream of a bundle, byte for byte what `tar -c -h -S --owner 0 --group 0 --format=gnu`
// (GNU tar 1.34) writes for the image. Streams the file in large reads; memory stays flat.
import { Readable } from 'node:stream';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ToolError } from '../errors.js';
import { blockPad, encodeMemberHeaders, trailerLength, type Region } from '../format/tar-header.js';
import type { BufferPool } from './buffer-pool.js';
import { isSparse, scanDataRegions } from './sparse-map.js';

export type { Region } from '../format/tar-header.js';

export interface TarSource {
  path: string;
  name: string;
  mode: number;
  mtime: number; // whole seconds
  size: number;
  /** Present for a sparse member: data regions ending with (size, 0). */
  sparseMap?: Region[];
}

const CHUNK = 1 << 20;

/** What GNU tar would record for the image: stat following symlinks (-h), permission bits, sparse map when sparse. */
export async function describeImage(path: string, name: string): Promise<TarSource> {
  let st;
  try {
    st = await stat(path, { bigint: true });
  } catch (err) {
    throw new ToolError(`cannot read image ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (!st.isFile()) throw new ToolError(`image ${path} is not a regular file`);
  const size = Number(st.size);
  // GNU format keeps the setuid/setgid/sticky bits and drops the file type bits.
  const src: TarSource = { path, name, mode: Number(st.mode) & 0o7777, mtime: floorSeconds(st.mtimeNs), size };
  if (isSparse({ size, blocks: Number(st.blocks) })) src.sparseMap = await scanDataRegions(path, size);
  return src;
}

function floorSeconds(ns: bigint): number {
  const s = ns / 1_000_000_000n;
  return Number(ns < 0n && s * 1_000_000_000n !== ns ? s - 1n : s);
}

/** Stored bytes of a member: the whole file, or the sum of its data regions. */
function storedSize(src: TarSource): number {
  return src.sparseMap ? src.sparseMap.reduce((n, r) => n + r.length, 0) : src.size;
}

/** The length of the tar stream createTarPack(src) makes: headers, data, padding and trailer. */
export function tarStreamLength(src: TarSource): number {
  const stored = storedSize(src);
  const headers = encodeMemberHeaders({
    name: src.name, mode: src.mode, mtime: src.mtime, size: stored,
    sparse: src.sparseMap ? { realsize: src.size, map: src.sparseMap } : undefined,
  }).length;
  const end = headers + stored + blockPad(stored);
  return end + trailerLength(end);
}

/** Chunks the tar stream is read in (all but the headers, the first and the last; `pool` must hand out this size). */
export const TAR_CHUNK = CHUNK;

/**
 * The tar stream of one file. Errors (unreadable or shrinking file) are emitted on the stream as ToolError. With
 * `pool`, the file is read into the pool's buffers, which the last reader gives back.
 */
export function createTarPack(src: TarSource, o: { pool?: BufferPool } = {}): Readable {
  const stored = storedSize(src);
  const headers = encodeMemberHeaders({
    name: src.name,
    mode: src.mode,
    mtime: src.mtime,
    size: stored,
    sparse: src.sparseMap ? { realsize: src.size, map: src.sparseMap } : undefined,
  });
  const regions = (src.sparseMap ?? [{ offset: 0, length: src.size }]).filter((r) => r.length > 0);
  const end = headers.length + stored + blockPad(stored);
  const tail = blockPad(stored) + trailerLength(end); // zero bytes after the data

  let fh: FileHandle | undefined;
  let region = 0;
  let inRegion = 0; // bytes of the current region already read
  let left = stored;
  let started = false;

  const close = async () => {
    const f = fh;
    fh = undefined;
    await f?.close();
  };

  return new Readable({
    highWaterMark: 2 * CHUNK, // one read ahead of the consumer, so it doesn't wait on each
    async read() {
      try {
        if (!started) {
          started = true;
          if (stored > 0) fh = await open(src.path, 'r');
          this.push(headers);
          if (stored === 0) {
            this.push(Buffer.alloc(tail));
            this.push(null);
          }
          return;
        }
        // Fill one chunk from as many regions as it takes; the last one carries the padding and trailer. The first
        // ends on a CHUNK boundary of the stream, so that every later one is exactly one CHUNK of it.
        const want = Math.min(left === stored ? CHUNK - (headers.length % CHUNK) : CHUNK, left);
        const isLast = want === left;
        const buf = isLast ? Buffer.allocUnsafe(want + tail) : want === CHUNK ? o.pool?.take() ?? Buffer.allocUnsafe(want) : Buffer.allocUnsafe(want);
        let filled = 0;
        while (filled < want) {
          const r = regions[region];
          const n = Math.min(want - filled, r.length - inRegion);
          const { bytesRead } = await fh!.read(buf, filled, n, r.offset + inRegion);
          if (bytesRead === 0) throw new ToolError(`${src.path} shrank while it was being read; bundle a file that is not in use`);
          filled += bytesRead;
          inRegion += bytesRead;
          if (inRegion === r.length) {
            region++;
            inRegion = 0;
          }
        }
        left -= want;
        if (isLast) {
          buf.fill(0, want);
          await close();
          this.push(buf);
          this.push(null);
        } else {
          this.push(buf);
        }
      } catch (err) {
        await close().catch(() => undefined);
        this.destroy(err instanceof ToolError ? err : new ToolError(`cannot read image ${src.path}: ${(err as Error).message}`, { cause: err }));
      }
    },
    destroy(err, cb) {
      close().then(() => cb(err), () => cb(err));
    },
  });
}

