import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Hashed in steps of this many bytes, with the event loop let through between them: a 4 MiB chunk is 2 ms of SHA-1,
 * during which finished thread-pool work (an inflate job) would wait for the loop to pick it up and queue the next.
 */
const STEP = 256 << 10;

/** Passes bytes through unchanged while taking their SHA-1 and counting them. */
export class DigestTap extends Transform {
  private readonly hash: Hash = createHash('sha1');
  private hex: string | undefined;
  bytes = 0;

  constructor(private readonly onBytes?: (total: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let at = 0;
    const step = (): void => {
      this.hash.update(chunk.subarray(at, (at += STEP)));
      if (at < chunk.length) return void setImmediate(step);
      this.bytes += chunk.length;
      this.onBytes?.(this.bytes);
      cb(null, chunk);
    };
    step();
  }

  /** The SHA-1 in lowercase hex; only once the stream has ended. */
  digest(): string {
    this.hex ??= this.hash.digest('hex');
    return this.hex;
  }
}
