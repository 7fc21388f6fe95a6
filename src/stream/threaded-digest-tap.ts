import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { DigestReply, DigestRequest } from './digest-worker.js';
import { workerScript } from './worker-script.js';

const COPY_BUFFER = 1 << 20;
const MAX_AT_WORKER = 8 << 20;

/**
 * DigestTap with the SHA-1 taken in a worker thread: this thread only copies each chunk for the worker (a copy costs
 * a tenth of the hash) and passes the chunk on at once, so hashing overlaps with every other stage. For streams of
 * hundreds of MB; digest() once the stream has ended.
 */
export class ThreadedDigestTap extends Transform {
  bytes = 0;
  private readonly worker: Worker;
  private readonly spare: ArrayBuffer[] = [];
  private atWorker = 0;
  private hex: string | undefined;
  private proceed: (() => void) | undefined;
  private ended: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(private readonly onBytes?: (total: number) => void) {
    super();
    this.worker = new Worker(workerScript('digest-worker'), { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
    this.worker.unref(); // held only while it has work (see send)
    this.worker.on('message', (m: DigestReply) => this.onReply(m));
    this.worker.on('error', (err) => this.fail(new Error(`SHA-1 worker failed: ${err.message}`)));
    this.worker.on('exit', (code) => {
      if (this.hex === undefined) this.fail(new Error(`SHA-1 worker exited unexpectedly (code ${code})`));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.failure) return cb(this.failure);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    const buf = chunk.length <= COPY_BUFFER ? (this.spare.pop() ?? new ArrayBuffer(COPY_BUFFER)) : new ArrayBuffer(chunk.length);
    const copy = new Uint8Array(buf, 0, chunk.length);
    copy.set(chunk);
    this.atWorker += chunk.length;
    this.send(copy, [buf]);
    this.push(chunk);
    if (this.atWorker < MAX_AT_WORKER) cb();
    else this.proceed = () => cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.failure) return cb(this.failure);
    this.ended = () => cb(this.failure ?? null);
    this.send('end', []);
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.failure ??= err ?? undefined;
    this.worker.terminate().then(() => cb(err), () => cb(err));
  }

  /** The SHA-1 in lowercase hex; only once the stream has ended. */
  digest(): string {
    if (this.hex === undefined) throw new Error('ThreadedDigestTap: digest() before the stream ended');
    return this.hex;
  }

  private send(m: DigestRequest, transfer: ArrayBuffer[]): void {
    this.worker.ref(); // pending work keeps the process alive until the reply
    this.worker.postMessage(m, transfer);
  }

  private onReply(m: DigestReply): void {
    if ('digest' in m) {
      this.hex = m.digest;
      this.worker.unref();
      void this.worker.terminate();
      this.ended?.();
      return;
    }
    this.atWorker -= m.done.byteLength;
    if (m.done.buffer.byteLength === COPY_BUFFER && this.spare.length < MAX_AT_WORKER / COPY_BUFFER) this.spare.push(m.done.buffer as ArrayBuffer);
    if (this.atWorker === 0 && !this.ended) this.worker.unref();
    const proceed = this.proceed;
    if (proceed && this.atWorker < MAX_AT_WORKER) {
      this.proceed = undefined;
      proceed();
    }
  }

  private fail(err: Error): void {
    if (this.failure || this.destroyed) return;
    this.destroy(err);
  }
}
