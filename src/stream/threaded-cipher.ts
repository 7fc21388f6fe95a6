import { Transform, type TransformCallback } from 'node:stream';
import type { CipherReply, CipherSetup } from './cipher-worker.js';
import { StageWorker } from './stage-worker.js';

const MAX_AT_WORKER = 4 << 20;

/**
 * AES-128-CBC (encrypt or decrypt) as a Transform whose cipher runs in a worker thread: this thread only copies each
 * chunk over, so encryption overlaps the other stages. Errors keep OpenSSL's code (ERR_OSSL_BAD_DECRYPT for a wrong
 * key or damaged data).
 */
class ThreadedCipher extends Transform {
  private readonly worker: StageWorker<CipherReply>;
  private proceed: (() => void) | undefined;
  private ended: (() => void) | undefined;

  constructor(setup: CipherSetup) {
    super();
    this.worker = new StageWorker('cipher-worker', (m) => this.onReply(m), (err) => this.fail(err), MAX_AT_WORKER >> 20, setup);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (chunk.length > 0) this.worker.sendCopy(chunk);
    this.proceed = () => cb();
    this.maybeProceed();
  }

  override _read(size: number): void {
    super._read(size);
    process.nextTick(() => this.maybeProceed()); // once the chunk being read is taken
  }

  override _flush(cb: TransformCallback): void {
    this.ended = () => cb();
    this.worker.send('end');
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.worker.close().then(() => cb(err), () => cb(err));
  }

  /** Room at the worker and in the output: results arrive outside _transform, so Transform can't bound the output. */
  private maybeProceed(): void {
    const proceed = this.proceed;
    if (proceed && this.worker.pending < MAX_AT_WORKER && this.readableLength < this.readableHighWaterMark) {
      this.proceed = undefined;
      proceed();
    }
  }

  private onReply(m: CipherReply): void {
    if ('error' in m) return this.fail(Object.assign(new Error(m.error), { code: m.code }));
    if (m.input) this.worker.reclaim(m.input, this.ended !== undefined);
    if (m.out.byteLength > 0 && !this.destroyed) this.push(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
    if (m.final) {
      void this.worker.close();
      this.ended?.();
      return;
    }
    this.maybeProceed();
  }

  private fail(err: Error): void {
    if (!this.destroyed) this.destroy(err);
  }
}

/** AES-128-CBC encryption (PKCS#7 padding, as openssl enc) in a worker thread. */
export function createThreadedCipher(key: Buffer, iv: Buffer): Transform {
  return new ThreadedCipher({ decrypt: false, key, iv });
}

/** AES-128-CBC decryption in a worker thread; a wrong key or damaged data fails with code ERR_OSSL_BAD_DECRYPT. */
export function createThreadedDecipher(key: Buffer, iv: Buffer): Transform {
  return new ThreadedCipher({ decrypt: true, key, iv });
}
