// Worker thread of createParallelGzip: deflates one chunk per message.
import { parentPort } from 'node:worker_threads';
import { deflateChunk } from './deflate-chunk.js';

export interface GzipJob { seq: number; data: Uint8Array; dictionary?: Uint8Array; level: number }
/** `input` is the job's chunk buffer handed back for reuse: buffers that die in this thread pile up until V8's
 *  external-memory limit (~64 MiB per isolate) forces a collection, because the worker allocates few JS objects. */
export type GzipJobResult = { seq: number; output: Uint8Array; input: Uint8Array } | { seq: number; error: string };

if (!parentPort) throw new Error('gzip-worker.js must run in a worker thread');
const port = parentPort;

port.on('message', (job: GzipJob) => {
  let output: Buffer;
  try {
    const data = Buffer.from(job.data.buffer, job.data.byteOffset, job.data.byteLength);
    const dictionary = job.dictionary && Buffer.from(job.dictionary.buffer, job.dictionary.byteOffset, job.dictionary.byteLength);
    output = deflateChunk(data, dictionary, job.level);
  } catch (err) {
    port.postMessage({ seq: job.seq, error: err instanceof Error ? err.message : String(err) } satisfies GzipJobResult);
    return;
  }
  // Never transfer what may be a slab of Buffer's shared pool (exactly Buffer.poolSize bytes): copy that instead.
  const owned = output.buffer.byteLength !== Buffer.poolSize;
  const result: GzipJobResult = { seq: job.seq, output: owned ? output : new Uint8Array(output), input: job.data };
  port.postMessage(result, [result.output.buffer as ArrayBuffer, job.data.buffer as ArrayBuffer]);
});
