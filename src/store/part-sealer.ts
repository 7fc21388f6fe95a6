import { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { Waiters } from '../stream/waiters.js';
import { workerScript } from '../stream/worker-script.js';
import type { PartSums, PartWriter } from './part-store.js';
import type { SealReply, SealRequest, SealWorkerData } from './seal-worker.js';

/** Plaintext goes to the worker in blocks of this size; BLOCKS of them circulate (4 MiB in all). */
const BLOCK = 1 << 20;
const BLOCKS = 4;

export interface PartSealerOptions {
  key: Buffer;
  iv: Buffer;
  /** Parts waiting for the writer at once (default 1); one more is being filled. */
  inFlight?: number;
}

/**
 * Encrypts a byte stream with AES-128-CBC (PKCS#7 padding, as createCipheriv) and cuts the ciphertext into
 * PART_SIZE parts, each handed with its SHA-1 to a part writer, whatever the store. The encryption and the part
 * digests run in a worker thread (seal-worker.ts), beside the main thread's work. Memory is bounded: BLOCKS plaintext
 * blocks and inFlight + 1 part buffers circulate between the threads and the writer, and are reused.
 */
export class PartSealer extends Writable {
  private readonly worker: Worker;
  private readonly spare: Buffer[] = [];
  private block: Buffer | undefined;
  private fill = 0;
  private blocks = 0; // allocated
  private readonly waiters = new Waiters();
  private readonly pending = new Set<Promise<void>>();
  private failure: { err: unknown } | undefined;
  private done: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  private closing = false;
  private outstanding = 0; // blocks and the end with the worker, unanswered: the worker keeps the process alive meanwhile
  /** Size and sums of each part, in order. */
  readonly parts: (PartSums & { size: number })[] = [];

  constructor(private readonly writer: PartWriter, o: PartSealerOptions) {
    super({ highWaterMark: BLOCK });
    const data: SealWorkerData = { key: Uint8Array.from(o.key), iv: Uint8Array.from(o.iv), partBuffers: (o.inFlight ?? 1) + 1 };
    // A worker holds few JS objects; small heap limits make V8 collect dead cipher output early.
    this.worker = new Worker(workerScript('store/seal-worker'), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
    this.worker.unref(); // an idle sealer (a stream left unfinished) never holds the process open
    this.worker.on('message', (m: SealReply) => this.onReply(m));
    this.worker.on('error', (err) => this.fail(new Error(`encryption worker failed: ${err.message}`)));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.fail(new Error(`encryption worker exited unexpectedly (code ${code})`));
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.append(chunk).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    (async () => {
      if (this.fill > 0) this.send();
      await new Promise<void>((resolve, reject) => {
        if (this.failure) return reject(this.failure.err); // a dead worker would never answer
        this.done = { resolve, reject };
        this.post({ end: true });
      });
      await Promise.all(this.pending);
      if (this.failure) throw this.failure.err;
    })().then(() => this.shutdown().then(() => cb()), (err: Error) => this.shutdown().then(() => cb(err)));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.fail(err ?? new Error('part sealer destroyed'));
    // A part still on its way must land (or fail) before the caller aborts the writer, or it would be left behind.
    Promise.allSettled(this.pending).then(() => this.shutdown()).then(() => cb(err), () => cb(err));
  }

  private async append(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (this.failure) throw this.failure.err;
      if (!this.block) {
        await this.waiters.until(() => {
          if (this.failure) throw this.failure.err;
          return this.spare.length > 0 || this.blocks < BLOCKS;
        });
        this.block = this.spare.pop() ?? (this.blocks++, Buffer.allocUnsafeSlow(BLOCK));
      }
      const n = chunk.copy(this.block, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === BLOCK) this.send();
    }
  }

  private send(): void {
    const block = this.block!.subarray(0, this.fill);
    this.block = undefined;
    this.fill = 0;
    this.post({ block }, [block.buffer as ArrayBuffer]);
  }

  private post(m: SealRequest, transfer?: ArrayBuffer[]): void {
    if (!('free' in m) && this.outstanding++ === 0) this.worker.ref();
    this.worker.postMessage(m, transfer);
  }

  private answered(): void {
    if (--this.outstanding === 0) this.worker.unref();
  }

  private onReply(m: SealReply): void {
    if ('block' in m) {
      this.answered();
      this.spare.push(Buffer.from(m.block.buffer as ArrayBuffer));
      this.waiters.wake();
    } else if ('part' in m) {
      const index = this.parts.length;
      const data = Buffer.from(m.part.buffer as ArrayBuffer, m.part.byteOffset, m.part.byteLength);
      const sums = { sha1: m.sha1 };
      this.parts.push({ ...sums, size: data.length });
      if (this.failure) return;
      const p: Promise<void> = this.writer.putPart(index, data, sums).then(
        () => {
          this.pending.delete(p);
          // The writer is done with the buffer: back to the worker for another part.
          if (!this.closing) this.post({ free: data }, [data.buffer as ArrayBuffer]);
        },
        (err) => {
          this.pending.delete(p);
          this.fail(err);
        },
      );
      this.pending.add(p);
    } else if ('done' in m) {
      this.answered();
      this.done?.resolve();
    } else {
      this.fail(new Error(`encryption failed: ${m.error}`));
    }
  }

  private fail(err: unknown): void {
    this.failure ??= { err };
    this.done?.reject(this.failure.err);
    this.waiters.wake();
  }


  private async shutdown(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}
