/**
 * Buffers of one size passed from a producer to the stage that reads them last, which gives each back when done, so
 * a stream reuses a few buffers instead of leaving one of garbage per chunk. V8 collects such memory only once tens
 * of MB have piled up, and glibc hands it back to the kernel in between: fresh pages, page faults, a larger RSS.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(readonly size: number, private readonly max: number) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Gives back a buffer: only a whole one of the pool's size is kept, and only once nothing reads it any more. */
  release(buf: Buffer): void {
    if (isWholeBuffer(buf, this.size) && this.free.length < this.max) this.free.push(buf);
  }
}

/** Whether `buf` is all of its memory and `size` bytes long: a buffer that can be kept, or transferred, as a whole. */
export function isWholeBuffer(buf: Buffer, size: number): boolean {
  return buf.length === size && buf.byteOffset === 0 && buf.buffer.byteLength === size;
}
