import { Transform, type TransformCallback } from 'node:stream';
import type { DigestReply } from './digest-worker.js';
import { StageWorker } from './stage-worker.js';

const MAX_AT_WORKER = 8 << 20;

/**
 * DigestTap with the SHA-1 taken in a worker thread: this thread only copies each chunk for the worker and passes the
 * chunk on at once, so hashing overlaps with every other stage. For streams of hundreds of MB; digest() once the
 * stream has ended.
 */
export class ThreadedDigestTap extends Transform {
  bytes = 0;
  private readonly worker: StageWorker<DigestReply>;
  private hex: string | undefined;
  private proceed: (() => void) | undefined;
  private ended: (() => void) | undefined;

  constructor(private readonly onBytes?: (total: number) => void) {
    super();
    this.worker = new StageWorker('digest-worker', (m) => this.onReply(m), (err) => this.fail(err), MAX_AT_WORKER >> 20);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    this.worker.sendCopy(chunk);
    this.push(chunk);
    if (this.worker.pending < MAX_AT_WORKER) cb();
    else this.proceed = () => cb();
  }

  override _flush(cb: TransformCallback): void {
    this.ended = () => cb();
    this.worker.send('end');
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.worker.close().then(() => cb(err), () => cb(err));
  }

  /** The SHA-1 in lowercase hex; only once the stream has ended. */
  digest(): string {
    if (this.hex === undefined) throw new Error('ThreadedDigestTap: digest() before the stream ended');
    return this.hex;
  }

  private onReply(m: DigestReply): void {
    if ('digest' in m) {
      this.hex = m.digest;
      void this.worker.close();
      this.ended?.();
      return;
    }
    this.worker.reclaim(m.done, this.ended !== undefined);
    const proceed = this.proceed;
    if (proceed && this.worker.pending < MAX_AT_WORKER) {
      this.proceed = undefined;
      proceed();
    }
  }

  private fail(err: Error): void {
    if (!this.destroyed) this.destroy(err);
  }
}
