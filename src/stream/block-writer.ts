// Turns (data, offset) pieces of a file with holes into few large writes: the pieces are gathered in two large buffers
// (one being written while the other fills), and the stretches between them either stay holes (all-zero 4 KiB blocks
// are not written) or are written as zeros (a device that must end byte-identical, a stream that has no holes).
import { isZero } from './sparse-map.js';

export const WRITE_BUFFER = 4 << 20; // a multiple of HOLE_BLOCK, and no more than isZero takes
const HOLE_BLOCK = 4096;

/** Writes buf[from, to) at `position` of the output, all of it (a short write is the callee's to continue). */
export type RangeWriter = (buf: Buffer, from: number, to: number, position: number) => Promise<void>;

export interface BlockWriterOptions {
  /**
   * `skip`: all-zero 4 KiB blocks (aligned to the output) and gaps are left unwritten: holes in a file, or a device
   * known to read as zeros. `write`: every byte from offset 0 on is written, in order, gaps as zeros.
   */
  zeros: 'skip' | 'write';
  /** Two WRITE_BUFFER-sized buffers to use (shared by the files of one extraction, one file at a time). */
  buffers?: Buffer[];
}

export function writeBuffers(): Buffer[] {
  return [Buffer.allocUnsafe(WRITE_BUFFER), Buffer.allocUnsafe(WRITE_BUFFER)];
}

export class BlockWriter {
  private cur = 0;
  private len = 0;
  private start = 0; // output offset of bufs[cur][0]
  private inflight: Promise<void> = Promise.resolve();
  private failure: unknown;
  private readonly bufs: Buffer[];
  private readonly skipZeros: boolean;

  constructor(private readonly out: RangeWriter, o: BlockWriterOptions) {
    this.bufs = o.buffers ?? writeBuffers();
    this.skipZeros = o.zeros === 'skip';
  }

  /** The output offset after the last byte accepted so far. */
  get position(): number {
    return this.start + this.len;
  }

  async write(data: Buffer, offset: number): Promise<void> {
    if (!this.skipZeros) {
      const gap = offset - this.position;
      if (gap < 0) throw new RangeError(`a piece at offset ${offset} overlaps what was written up to ${this.position}`);
      await this.zeros(gap);
    }
    let p = 0;
    while (p < data.length) {
      const at = offset + p;
      if (this.len > 0) {
        const gap = at - (this.start + this.len);
        if (gap > 0 && gap < this.capacity() - this.len) {
          // A hole before the next region, within this buffer: zeros, which become a hole again unless they share a
          // 4 KiB block with data, so that many small regions cost a few large writes rather than one write each.
          this.bufs[this.cur]!.fill(0, this.len, this.len + gap);
          this.len += gap;
        } else if (gap !== 0) {
          await this.flush();
        }
      }
      if (this.len === 0) this.start = at;
      const cap = this.capacity();
      const n = Math.min(cap - this.len, data.length - p);
      data.copy(this.bufs[this.cur]!, this.len, p, p + n);
      this.len += n;
      p += n;
      if (this.len === cap) await this.flush();
    }
  }

  /** Writes what is buffered; in `write` mode, first zeros up to `size` (the output's length). */
  async finish(size = 0): Promise<void> {
    if (!this.skipZeros && size > this.position) await this.zeros(size - this.position);
    await this.flush();
    await this.settle();
  }

  /** Drops what is buffered and waits for a write in flight (after a failure: nothing more is written). */
  async stop(): Promise<void> {
    this.len = 0;
    await this.inflight;
  }

  /** `n` zero bytes at the current position, through the buffers (`write` mode only). */
  private async zeros(n: number): Promise<void> {
    while (n > 0) {
      if (this.len === 0) this.start = this.position;
      const k = Math.min(this.capacity() - this.len, n);
      this.bufs[this.cur]!.fill(0, this.len, this.len + k);
      this.len += k;
      n -= k;
      if (this.len === this.capacity()) await this.flush();
    }
  }

  /** A buffer that starts unaligned ends at a 4 KiB boundary of the output, so the following ones are aligned. */
  private capacity(): number {
    return WRITE_BUFFER - (this.start % HOLE_BLOCK);
  }

  /** Starts writing the current buffer (one write may be in flight while the other buffer fills). */
  private async flush(): Promise<void> {
    await this.settle();
    if (this.len === 0) return;
    const buf = this.bufs[this.cur]!;
    const { len, start } = this;
    this.cur ^= 1;
    this.start += len;
    this.len = 0;
    const job = this.skipZeros ? this.writeRuns(buf, len, start) : this.out(buf, 0, len, start);
    this.inflight = job.catch((err: unknown) => { this.failure = err; });
  }

  private async settle(): Promise<void> {
    await this.inflight;
    if (this.failure) throw this.failure;
  }

  private async writeRuns(buf: Buffer, len: number, start: number): Promise<void> {
    if (isZero(buf, 0, len)) return;
    let run = -1;
    let i = 0;
    while (i < len) {
      const end = Math.min(len, i + HOLE_BLOCK - ((start + i) % HOLE_BLOCK));
      const zero = isZero(buf, i, end);
      if (!zero && run < 0) run = i;
      if (zero && run >= 0) {
        await this.out(buf, run, i, start + run);
        run = -1;
      }
      i = end;
    }
    if (run >= 0) await this.out(buf, run, len, start + run);
  }
}

/** Positional writes to an open file or device, continuing short writes. */
export function fileRangeWriter(fh: { write(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }> }): RangeWriter {
  return async (buf, from, to, position) => {
    while (from < to) {
      const { bytesWritten } = await fh.write(buf, from, to - from, position);
      from += bytesWritten;
      position += bytesWritten;
    }
  };
}
