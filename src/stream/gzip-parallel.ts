// Parallel deflate that still produces ONE gzip member (see docs/performance-notes.md): the input is cut into
// chunks, each deflated raw in a worker (deflate-chunk.ts: the previous 32 KiB as dictionary, stored blocks for
// incompressible segments, ending byte-aligned), so the outputs concatenate into one deflate stream; an empty final
// block, CRC-32 (combined from the workers' CRCs of their chunks) and ISIZE close it.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { crc32Combine } from '../format/crc32-combine.js';
import type { GzipJob, GzipJobResult } from './gzip-worker.js';
import { isWholeBuffer } from './buffer-pool.js';
import { Waiters } from './waiters.js';
import { workerScript } from './worker-script.js';

export interface ParallelGzipOptions {
  /** 0 (stored) to 9; default DEFAULT_GZIP_LEVEL. */
  level?: number;
  /** Worker threads; default one per core. */
  workers?: number;
  chunkSize?: number;
  /** Called with each input chunk once it has been copied: a pool's release, for the stage that made it. */
  release?: (chunk: Buffer) => void;
  /**
   * Input chunks are ours once written: one that is a whole buffer of exactly chunkSize bytes, arriving where a chunk
   * starts, goes to a worker as it is (transferred, not copied) and comes back through `release`.
   */
  adopt?: boolean;
}

/** Level 6: a sixth of level 9's time for 0.3% more bytes on an OS image (see README, Performance). */
export const DEFAULT_GZIP_LEVEL = 6;

const WINDOW = 32 * 1024;
const DEFAULT_CHUNK = 1024 * 1024;
// Final block, fixed Huffman, holding only end-of-block: BFINAL=1, BTYPE=01, code 0000000.
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/** The gzip header as gzip(1) and zlib write it: no name, MTIME 0, XFL by level, OS 3 (Unix). */
export function gzipHeader(level: number): Buffer {
  const xfl = level === 9 ? 2 : level <= 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, xfl, 0x03]);
}

interface Slot { worker: Worker; busy: boolean }

class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly chunkSize: number;
  private readonly maxWorkers: number;
  private readonly maxInFlight: number;
  private readonly script: string;
  private readonly release: ((chunk: Buffer) => void) | undefined;
  private readonly adopt: boolean;
  private readonly adopted = new Set<number>(); // seqs whose buffer came from the input
  private readonly slots: Slot[] = [];
  private readonly queue: GzipJob[] = [];
  private readonly done = new Map<number, { pieces: Buffer[]; crc: number; length: number }>();
  private readonly spare: Buffer[] = []; // chunk buffers back from the workers
  private readonly waiters = new Waiters();
  private nextSeq = 0;
  private nextOut = 0;
  private inFlight = 0; // submitted and not yet pushed
  private crc = 0;
  private total = 0;
  private window: Buffer = Buffer.alloc(0);
  private cur: Buffer | null = null;
  private curLen = 0;
  private closing = false;
  private failure: Error | null = null;

  constructor(opts: ParallelGzipOptions) {
    super();
    this.level = opts.level ?? DEFAULT_GZIP_LEVEL;
    this.maxWorkers = opts.workers ?? availableParallelism();
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
    this.release = opts.release;
    this.adopt = opts.adopt ?? false;
    if (!Number.isInteger(this.level) || this.level < 0 || this.level > 9) throw new RangeError(`gzip level must be 0-9, not ${opts.level}`);
    if (!Number.isInteger(this.maxWorkers) || this.maxWorkers < 1) throw new RangeError(`gzip workers must be a positive integer, not ${opts.workers}`);
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 1) throw new RangeError(`gzip chunkSize must be a positive integer, not ${opts.chunkSize}`);
    // One chunk per worker and two queued: each further in-flight chunk costs 2 MiB (input and output).
    this.maxInFlight = this.maxWorkers + 2;
    this.script = workerScript('stream/gzip-worker');
    // Started now, so they boot while the first chunks are read.
    for (let i = 0; i < this.maxWorkers; i++) this.spawn();
    this.push(gzipHeader(this.level));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.adopt && this.curLen === 0 && isWholeBuffer(chunk, this.chunkSize)) {
      this.adopted.add(this.nextSeq);
      this.submit(chunk);
      this.untilRoom().then(() => cb(), cb);
      return;
    }
    this.consume(chunk).then(() => {
      this.release?.(chunk);
      cb();
    }, cb);
  }

  override _read(size: number): void {
    super._read(size);
    // The consumer wants more: input waiting for room in the output may go on, once the chunk being read is taken.
    process.nextTick(() => this.waiters.wake());
  }

  override _flush(cb: TransformCallback): void {
    this.finish().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.failure ??= err ?? new Error('parallel gzip stream destroyed');
    this.waiters.wake();
    this.shutdown().then(() => cb(err), () => cb(err));
  }

  private async consume(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      this.cur ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(this.chunkSize);
      const n = data.copy(this.cur, this.curLen, off);
      off += n;
      this.curLen += n;
      if (this.curLen === this.chunkSize) {
        this.submit(this.cur);
        this.cur = null;
        this.curLen = 0;
        await this.untilRoom();
      }
    }
  }

  /** Output waiting for the consumer is bounded here: results arrive outside _transform, so Transform can't. */
  private untilRoom(): Promise<void> {
    return this.until(() => this.inFlight < this.maxInFlight && this.readableLength < this.readableHighWaterMark);
  }

  private async finish(): Promise<void> {
    if (this.curLen > 0 && this.cur) this.submit(this.cur.subarray(0, this.curLen));
    this.cur = null;
    await this.until(() => this.inFlight === 0);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.total % 2 ** 32, 4);
    this.push(Buffer.concat([FINAL_BLOCK, trailer]));
    await this.shutdown();
  }

  private submit(data: Buffer): void {
    this.total += data.length;
    const dictionary = this.window.length > 0 ? this.window : undefined;
    // A copy: `data` is transferred to the worker. Chunks under 32 KiB take the window's tail along.
    const tail = Buffer.concat([this.window, data.length >= WINDOW ? data.subarray(data.length - WINDOW) : data]);
    this.window = tail.subarray(Math.max(0, tail.length - WINDOW));
    this.queue.push({ seq: this.nextSeq++, data, dictionary, level: this.level });
    this.inFlight++;
    this.dispatch();
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.failure) {
      const slot = this.slots.find((s) => !s.busy);
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.busy = true;
      slot.worker.ref(); // a busy worker keeps the process alive until its result arrives
      slot.worker.postMessage(job, [job.data.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Slot {
    // A worker holds few JS objects; small heap limits make V8 collect dead chunk buffers early (~20 MiB less RSS).
    const worker = new Worker(this.script, { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
    const slot: Slot = { worker, busy: false };
    worker.unref(); // an idle worker never holds the process open
    worker.on('message', (msg: GzipJobResult) => this.onResult(slot, msg));
    worker.on('error', (err) => this.fail(new Error(`gzip worker failed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(new Error(`gzip worker exited unexpectedly (code ${code})`));
    });
    this.slots.push(slot);
    return slot;
  }

  private onResult(slot: Slot, msg: GzipJobResult): void {
    slot.busy = false;
    slot.worker.unref();
    if ('error' in msg) return this.fail(new Error(`gzip worker could not deflate chunk ${msg.seq}: ${msg.error}`));
    if (this.adopted.delete(msg.seq)) this.release?.(Buffer.from(msg.input.buffer));
    else if (msg.input.buffer.byteLength === this.chunkSize && this.spare.length <= this.maxInFlight) this.spare.push(Buffer.from(msg.input.buffer));
    // A piece that is a small part of its buffer (zlib's is sized for the worst case) is copied, so the buffer can go.
    const pieces = msg.output.map((p) => (p.byteLength < p.buffer.byteLength / 4 ? Buffer.from(p) : Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
    this.done.set(msg.seq, { pieces, crc: msg.crc, length: msg.input.byteLength });
    for (let out = this.done.get(this.nextOut); out; out = this.done.get(this.nextOut)) {
      this.done.delete(this.nextOut++);
      this.inFlight--;
      this.crc = crc32Combine(this.crc, out.crc, out.length);
      if (!this.destroyed) for (const piece of out.pieces) this.push(piece);
    }
    this.dispatch();
    this.waiters.wake();
  }

  private fail(err: Error): void {
    if (this.failure || this.destroyed) return;
    this.destroy(err);
  }

  /** Waits for `ready`, or rejects once the stream has failed. */
  private until(ready: () => boolean): Promise<void> {
    return this.waiters.until(() => {
      if (this.failure) throw this.failure;
      return ready();
    });
  }


  private async shutdown(): Promise<void> {
    this.closing = true;
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

/** A Transform that gzips its input as ONE member, deflating chunks in a pool of worker threads. Output is identical
 *  for any number of workers at a given chunk size and level. */
export function createParallelGzip(opts: ParallelGzipOptions = {}): Transform {
  return new ParallelGzip(opts);
}
