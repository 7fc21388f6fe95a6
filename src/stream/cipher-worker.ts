// Worker thread of createThreadedCipher: one AES-128-CBC cipher or decipher, fed the chunks in order.
import { createCipheriv, createDecipheriv, type Cipher, type Decipher } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

export interface CipherSetup { decrypt: boolean; key: Uint8Array; iv: Uint8Array }
/** A chunk to transform, or the end of the stream. */
export type CipherRequest = Uint8Array | 'end';
/** `out`: the transformed bytes of one chunk, with its buffer handed back (`input`), or the final block. */
export type CipherReply = { out: Uint8Array; input?: Uint8Array; final?: true } | { error: string; code?: string };

if (!parentPort) throw new Error('cipher-worker.js must run in a worker thread');
const port = parentPort;
const setup = workerData as CipherSetup;
const cipher: Cipher | Decipher = setup.decrypt
  ? createDecipheriv('aes-128-cbc', setup.key, setup.iv)
  : createCipheriv('aes-128-cbc', setup.key, setup.iv);

/** A result that owns its memory (Node's small outputs are slices of a shared pool): transferable as it is. */
const owned = (b: Buffer): Uint8Array => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b));

port.on('message', (m: CipherRequest) => {
  try {
    if (m === 'end') {
      const out = owned(cipher.final());
      port.postMessage({ out, final: true } satisfies CipherReply, [out.buffer as ArrayBuffer]);
      return;
    }
    const out = owned(cipher.update(m));
    port.postMessage({ out, input: m } satisfies CipherReply, [out.buffer as ArrayBuffer, m.buffer as ArrayBuffer]);
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code } satisfies CipherReply);
  }
});
