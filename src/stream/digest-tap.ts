import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Passes bytes through unchanged while taking their SHA-1 and counting them. */
export class DigestTap extends Transform {
  private readonly hash: Hash = createHash('sha1');
  private hex: string | undefined;
  bytes = 0;

  constructor(private readonly onBytes?: (total: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    cb(null, chunk);
  }

  /** The SHA-1 in lowercase hex; only once the stream has ended. */
  digest(): string {
    this.hex ??= this.hash.digest('hex');
    return this.hex;
  }
}
