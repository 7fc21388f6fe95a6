// Worker thread of createParallelGzip: deflates one chunk per message.
import { parentPort } from 'node:worker_threads';
import { constants, deflateRawSync } from 'node:zlib';

export interface GzipJob { seq: number; data: Uint8Array; dictionary?: Uint8Array; level: number }
export type GzipJobResult = { seq: number; output: Uint8Array } | { seq: number; error: string };

if (!parentPort) throw new Error('gzip-worker.js must run in a worker thread');
const port = parentPort;

port.on('message', (job: GzipJob) => {
  let output: Buffer;
  try {
    // Sync flush: the block ends byte-aligned and not final, so the next chunk's blocks can follow it directly.
    output = deflateRawSync(job.data, {
      level: job.level,
      finishFlush: constants.Z_SYNC_FLUSH,
      ...(job.dictionary ? { dictionary: job.dictionary } : {}),
    });
  } catch (err) {
    port.postMessage({ seq: job.seq, error: err instanceof Error ? err.message : String(err) } satisfies GzipJobResult);
    return;
  }
  // Transfer only a buffer we own entirely; a pooled slice would detach unrelated memory.
  const owned = output.byteOffset === 0 && output.byteLength === output.buffer.byteLength;
  const result: GzipJobResult = { seq: job.seq, output: owned ? output : new Uint8Array(output) };
  port.postMessage(result, [result.output.buffer as ArrayBuffer]);
});
