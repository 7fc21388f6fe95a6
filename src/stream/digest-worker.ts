// Worker thread of ThreadedDigestTap: SHA-1 of the chunks it is sent, in order; each chunk's buffer goes back for reuse.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export type DigestRequest = Uint8Array | 'end';
export type DigestReply = { done: Uint8Array } | { digest: string };

if (!parentPort) throw new Error('digest-worker.js must run in a worker thread');
const port = parentPort;
const hash = createHash('sha1');

port.on('message', (m: DigestRequest) => {
  if (m === 'end') {
    port.postMessage({ digest: hash.digest('hex') } satisfies DigestReply);
    return;
  }
  hash.update(m);
  port.postMessage({ done: m } satisfies DigestReply, [m.buffer as ArrayBuffer]);
});
