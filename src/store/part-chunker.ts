import { Writable } from 'node:stream';
import { PART_SIZE } from '../format/part-name.js';
import { partSums, type PartSums, type PartWriter } from './part-store.js';

/**
 * Cuts a byte stream into PART_SIZE parts and hands each, with its SHA-1 and MD5, to a part writer, whatever the
 * store. At most `inFlight` parts wait for the writer (plus the one being filled): memory is bounded by that.
 */
export class PartChunker extends Writable {
  private buf: Buffer | undefined;
  private fill = 0;
  private readonly pending = new Set<Promise<void>>();
  /** Part buffers the writer is done with, filled again: a 10 MiB buffer per part would be garbage V8 is slow to free. */
  private readonly spare: Buffer[] = [];
  private failure: { err: unknown } | undefined;
  /** Size and sums of each part, in order. */
  readonly parts: (PartSums & { size: number })[] = [];

  constructor(private readonly writer: PartWriter, private readonly inFlight = 1) {
    super({ highWaterMark: 1 << 20 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.append(chunk).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    (async () => {
      if (this.fill > 0 || this.parts.length === 0) await this.emitPart();
      await this.settle();
      if (this.failure) throw this.failure.err;
    })().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A part still on its way must land (or fail) before the caller aborts the writer, or it would be left behind.
    this.settle().then(() => cb(err), () => cb(err));
  }

  private async append(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (this.failure) throw this.failure.err;
      this.buf ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(PART_SIZE);
      const n = chunk.copy(this.buf, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === PART_SIZE) await this.emitPart();
    }
  }

  private async emitPart(): Promise<void> {
    const buf = this.buf;
    const data = (buf ?? Buffer.alloc(0)).subarray(0, this.fill);
    this.buf = undefined;
    this.fill = 0;
    const sums = partSums(data);
    const index = this.parts.length;
    this.parts.push({ ...sums, size: data.length });
    const p: Promise<void> = this.writer.putPart(index, data, sums).then(
      () => {
        this.pending.delete(p);
        if (buf && this.spare.length < this.inFlight) this.spare.push(buf);
      },
      (err) => { this.pending.delete(p); this.failure ??= { err }; },
    );
    this.pending.add(p);
    while (this.pending.size >= this.inFlight && !this.failure) await Promise.race(this.pending);
    if (this.failure) throw this.failure.err;
  }

  private async settle(): Promise<void> {
    await Promise.all(this.pending);
  }
}
