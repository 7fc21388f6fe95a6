import { describe, expect, it } from 'vitest';
import { createCipheriv, randomBytes } from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createThreadedCipher, createThreadedDecipher } from '../../src/stream/threaded-cipher.js';

const key = randomBytes(16);
const iv = randomBytes(16);

async function through(stage: Transform, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), stage, new Writable({ write(c: Buffer, _e, cb) { out.push(c); cb(); } }));
  return Buffer.concat(out);
}

const openssl = (data: Buffer) => {
  const c = createCipheriv('aes-128-cbc', key, iv);
  return Buffer.concat([c.update(data), c.final()]);
};

describe('createThreadedCipher / createThreadedDecipher', () => {
  const data = randomBytes(5 * 1024 * 1024 + 13);
  // Odd sizes, views of one buffer, chunks over the 1 MiB copy buffer, an empty one.
  const pieces = [data.subarray(0, 1), data.subarray(1, 17), Buffer.alloc(0), data.subarray(17, 3 * 1024 * 1024), data.subarray(3 * 1024 * 1024)];

  it('encrypts exactly as createCipheriv does, whatever the chunks', async () => {
    expect((await through(createThreadedCipher(key, iv), pieces)).equals(openssl(data))).toBe(true);
    expect(data.length).toBe(5 * 1024 * 1024 + 13); // the chunks went through untouched (copied, not transferred)
  });

  it('decrypts back, and an empty stream is one padding block', async () => {
    const enc = openssl(data);
    const chunks = [enc.subarray(0, 100), enc.subarray(100, 2_000_000), enc.subarray(2_000_000)];
    expect((await through(createThreadedDecipher(key, iv), chunks)).equals(data)).toBe(true);
    const empty = await through(createThreadedCipher(key, iv), []);
    expect(empty.equals(openssl(Buffer.alloc(0)))).toBe(true);
    expect((await through(createThreadedDecipher(key, iv), [empty])).length).toBe(0);
  });

  it("fails with OpenSSL's ERR_OSSL_BAD_DECRYPT for the wrong key", async () => {
    const enc = openssl(data.subarray(0, 100_000));
    await expect(through(createThreadedDecipher(randomBytes(16), iv), [enc])).rejects.toMatchObject({ code: 'ERR_OSSL_BAD_DECRYPT' });
  });

  it('fails the pipeline when the source fails', async () => {
    const source = Readable.from((async function* () {
      yield randomBytes(1000);
      throw new Error('source broke');
    })());
    const stage = createThreadedCipher(key, iv);
    await expect(pipeline(source, stage, new Writable({ write(_c, _e, cb) { cb(); } }))).rejects.toThrow('source broke');
    expect(stage.destroyed).toBe(true);
  });
});
