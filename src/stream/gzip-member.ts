// Inflates the one gzip member (RFC 1952) of a bundle. zlib's gunzip also computes the member's CRC-32, about a seventh
// of inflating's time, on the thread that inflates, which is what bounds unbundling's speed. Here the header is read by
// us, the deflate data goes to zlib's raw inflate, and the trailer is checked for the length only: the caller checks a
// stronger digest of the very same bytes (unbundle: the tar's SHA-1, which the manifest carries).

import { Transform, type TransformCallback } from 'node:stream';
import { crc32, createInflateRaw, type ZlibOptions } from 'node:zlib';

const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;
const RESERVED = 0xe0;
const TRAILER = 8;
/** A header longer than this (it can only be by a long name, comment or extra field) is refused rather than buffered. */
export const MAX_HEADER = 64 << 10;

/** An invalid gzip stream, coded as zlib codes its own data errors. */
export function gzipDataError(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: 'Z_DATA_ERROR' });
}

/**
 * The length of the gzip header at the start of `b`, or undefined while `b` holds only part of it. Throws on what zlib
 * would refuse: another magic, a method other than deflate, reserved flags, a wrong header CRC.
 */
export function gzipHeaderLength(b: Buffer): number | undefined {
  if ((b.length > 0 && b[0] !== 0x1f) || (b.length > 1 && b[1] !== 0x8b)) throw gzipDataError('incorrect header check');
  if (b.length > 2 && b[2] !== 8) throw gzipDataError('unknown compression method');
  if (b.length > 3 && b[3]! & RESERVED) throw gzipDataError('unknown header flags set');
  if (b.length < 10) return undefined;
  const flags = b[3]!;
  let p = 10;
  if (flags & FEXTRA) {
    if (b.length < p + 2) return undefined;
    p += 2 + b.readUInt16LE(p);
  }
  for (const field of [FNAME, FCOMMENT]) {
    if (!(flags & field)) continue;
    if (p >= b.length) return undefined;
    const end = b.indexOf(0, p);
    if (end < 0) return undefined;
    p = end + 1;
  }
  if (flags & FHCRC) {
    if (b.length < p + 2) return undefined;
    if ((crc32(b.subarray(0, p)) & 0xffff) !== b.readUInt16LE(p)) throw gzipDataError('header crc mismatch');
    p += 2;
  }
  return p <= b.length ? p : undefined;
}

/**
 * Passes on the deflate data between a gzip header and its 8-byte trailer. It holds back the chunks that may still be
 * the trailer (rather than copying the last 8 bytes out of each chunk), so the data goes on unchanged; like a
 * Writable's buffer, it keeps a chunk past its write callback, so the producer must not reuse the memory.
 */
class GzipFraming extends Transform {
  private head: Buffer | undefined = Buffer.alloc(0);
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Deflate bytes passed on. */
  passed = 0;
  trailer: Buffer | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (this.head) {
        const b = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
        const n = gzipHeaderLength(b);
        if (n === undefined) {
          if (b.length > MAX_HEADER) throw gzipDataError(`gzip header longer than ${MAX_HEADER} bytes`);
          this.head = Buffer.from(b);
          return cb();
        }
        this.head = undefined;
        chunk = b.subarray(n);
      }
      this.hold(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.head) return cb(gzipDataError(this.head.length ? 'truncated gzip header' : 'no gzip data'));
    const rest = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held);
    if (rest.length < TRAILER) return cb(gzipDataError('gzip stream ends without its trailer'));
    this.trailer = Buffer.from(rest.subarray(rest.length - TRAILER));
    this.pass(rest.subarray(0, rest.length - TRAILER));
    cb();
  }

  private hold(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    while (this.heldBytes - this.held[0]!.length >= TRAILER) {
      const c = this.held.shift()!;
      this.heldBytes -= c.length;
      this.pass(c);
    }
  }

  private pass(c: Buffer): void {
    if (c.length === 0) return;
    this.passed += c.length;
    this.push(c);
  }
}

/**
 * A gzip member's decompression as two pipeline stages, `framing` then `inflate`; once the pipeline is done, `check`
 * takes the number of bytes that came out and compares it with the trailer's. Anything after the member (a second
 * member, trailing data) fails the pipeline, and `explain` turns that failure into what happened: a bundle holds one
 * member.
 */
export class GzipMember {
  private readonly framing = new GzipFraming();
  readonly inflate: Transform;

  constructor(zlib: ZlibOptions & { readableHighWaterMark?: number } = {}) {
    this.inflate = createInflateRaw(zlib as ZlibOptions);
  }

  get stages(): [Transform, Transform] {
    return [this.framing, this.inflate];
  }

  /** The failure to report for an error from the pipeline. */
  explain(err: Error): Error {
    // The inflate stage ended before its input did: the pipeline reports a premature close.
    const ended = this.inflate.readableEnded || (err as Error & { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE';
    return (ended && this.leftOver()) || err;
  }

  /** After the pipeline: all of the member was inflated, and the trailer's length (modulo 2^32) is that of what came out. */
  check(outputBytes: number): void {
    const t = this.framing.trailer;
    if (!t) throw new Error('GzipMember.check before the stream ended');
    const left = this.leftOver();
    if (left) throw left;
    if (t.readUInt32LE(4) !== outputBytes % 2 ** 32) throw gzipDataError(`the gzip trailer gives a length of ${t.readUInt32LE(4)} bytes, not the ${outputBytes % 2 ** 32} that came out (modulo 2^32)`);
  }

  /** The deflate data ended before what was passed to it: something follows the member. */
  private leftOver(): Error | undefined {
    const consumed = (this.inflate as Transform & { bytesWritten: number }).bytesWritten;
    return consumed < this.framing.passed ? gzipDataError('data follows the gzip member, and a bundle holds one member') : undefined;
  }
}
