// Worker thread of createParallelGzip: deflates one chunk per message.
import { parentPort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { allZero, deflateChunk } from './deflate-chunk.js';

export interface GzipJob { seq: number; data: Uint8Array; dictionary?: Uint8Array; level: number }
/** `output` are the chunk's pieces in order, `crc` the CRC-32 of its input. `input` is the job's chunk buffer handed back for reuse: buffers that
 *  die in this thread pile up until V8's external-memory limit (~64 MiB per isolate) forces a collection, because
 *  the worker allocates few JS objects; so everything this thread allocates is handed over too. */
export type GzipJobResult = { seq: number; output: Uint8Array[]; crc: number; input: Uint8Array } | { seq: number; error: string };

if (!parentPort) throw new Error('gzip-worker.js must run in a worker thread');
const port = parentPort;

const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

// Runs of written zeros are common in disk images; their CRC-32 depends only on the length.
const zeroCrcs = new Map<number, number>();
function chunkCrc(data: Buffer): number {
  if (!allZero(data)) return crc32(data);
  let crc = zeroCrcs.get(data.length);
  if (crc === undefined) zeroCrcs.set(data.length, (crc = crc32(data)));
  return crc;
}

port.on('message', (job: GzipJob) => {
  let pieces: Buffer[];
  let crc: number;
  try {
    crc = chunkCrc(view(job.data));
    pieces = deflateChunk(view(job.data), job.dictionary && view(job.dictionary), job.level);
  } catch (err) {
    port.postMessage({ seq: job.seq, error: err instanceof Error ? err.message : String(err) } satisfies GzipJobResult);
    return;
  }
  // Never transfer what may be a slab of Buffer's shared pool (exactly Buffer.poolSize bytes): copy that instead.
  const output = pieces.map((p) => (p.buffer.byteLength === Buffer.poolSize ? new Uint8Array(p) : p));
  const transfer = new Set<ArrayBuffer>([job.data.buffer as ArrayBuffer, ...output.map((p) => p.buffer as ArrayBuffer)]);
  port.postMessage({ seq: job.seq, output, crc, input: job.data } satisfies GzipJobResult, [...transfer]);
});
