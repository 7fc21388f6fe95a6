import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The compiled worker script `name`.js of src/stream; vitest runs the TypeScript sources, whose workers only exist
 *  built in dist/. */
export function workerScript(name: string): string {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL(`../../dist/stream/${name}.js`, here) : new URL(`./${name}.js`, here);
  const path = fileURLToPath(url);
  if (!existsSync(path)) throw new Error(`worker ${path} is missing: build the project with 'npx tsc -p .'`);
  return path;
}

const COPY_BUFFER = 1 << 20;

/**
 * The worker thread of one sequential stream stage (a hash, a cipher): chunks are copied over in reusable 1 MiB
 * buffers (a copy costs a tenth of the work it moves off this thread, and the chunk itself stays usable), which the
 * worker hands back. The worker holds the process open only while it has work.
 */
export class StageWorker<Reply> {
  private readonly worker: Worker;
  private readonly spare: ArrayBuffer[] = [];
  private closing = false;
  /** Bytes sent and not yet handed back. */
  pending = 0;

  constructor(name: string, onReply: (m: Reply) => void, onFailure: (err: Error) => void, private readonly maxSpare: number, workerData?: unknown) {
    // Few JS objects live in the worker: small heap limits.
    this.worker = new Worker(workerScript(name), { workerData, resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
    this.worker.unref();
    this.worker.on('message', onReply);
    this.worker.on('error', (err) => onFailure(new Error(`${name} failed: ${err.message}`)));
    this.worker.on('exit', (code) => {
      if (!this.closing) onFailure(new Error(`${name} exited unexpectedly (code ${code})`));
    });
  }

  /** Sends a copy of `chunk`. */
  sendCopy(chunk: Uint8Array): void {
    const buf = chunk.length <= COPY_BUFFER ? (this.spare.pop() ?? new ArrayBuffer(COPY_BUFFER)) : new ArrayBuffer(chunk.length);
    const copy = new Uint8Array(buf, 0, chunk.length);
    copy.set(chunk);
    this.pending += chunk.length;
    this.send(copy, [buf]);
  }

  send(message: unknown, transfer: ArrayBuffer[] = []): void {
    this.worker.ref(); // pending work keeps the process alive until the reply
    this.worker.postMessage(message, transfer);
  }

  /** A copy the worker is done with; `more` says whether a reply is still awaited (else the worker may idle). */
  reclaim(copy: Uint8Array, more: boolean): void {
    this.pending -= copy.byteLength;
    if (copy.buffer.byteLength === COPY_BUFFER && this.spare.length < this.maxSpare) this.spare.push(copy.buffer as ArrayBuffer);
    if (this.pending === 0 && !more) this.worker.unref();
  }

  /** Ends the worker; its exit is then no failure. */
  close(): Promise<number> {
    this.closing = true;
    return this.worker.terminate();
  }
}
