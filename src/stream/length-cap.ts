import { Transform, type TransformCallback } from 'node:stream';
import { ToolError } from '../errors.js';

/**
 * Passes at most `max` bytes and fails, without passing them on, as soon as one more arrives: an input that claims
 * to be short cannot make us read, hold or write more than it is allowed (a part on /dev/zero, a hostile S3 body).
 */
export class LengthCap extends Transform {
  private seen = 0;

  constructor(private readonly max: number, private readonly tooLong: () => Error) {
    super();
  }

  /** Bytes passed so far. */
  get bytes(): number {
    return this.seen;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) cb(this.tooLong());
    else cb(null, chunk);
  }
}

/**
 * A part whose length is not the one the manifest's bundled_size gives it: `where` names it, `actual` says what
 * it is ("20 bytes long", "over 13 bytes long"), `advice` what to do.
 */
export function partLengthError(where: string, actual: string, length: number, advice: string): ToolError {
  return new ToolError(`${where} is ${actual}, but the manifest's bundled_size makes it ${length} bytes; ${advice}`, { code: 'PART_DIGEST_MISMATCH' });
}
