import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ThreadedDigestTap } from '../../src/stream/threaded-digest-tap.js';

const sha1 = (bufs: Buffer[]) => bufs.reduce((h, b) => h.update(b), createHash('sha1')).digest('hex');

async function tapAll(chunks: Buffer[], onBytes?: (n: number) => void): Promise<{ tap: ThreadedDigestTap; out: Buffer }> {
  const tap = new ThreadedDigestTap(onBytes);
  const got: Buffer[] = [];
  await pipeline(Readable.from(chunks), tap, new Writable({ write(c: Buffer, _e, cb) { got.push(c); cb(); } }));
  return { tap, out: Buffer.concat(got) };
}

describe('ThreadedDigestTap', () => {
  it('passes every byte on unchanged and takes the SHA-1 of them, whatever the chunks are', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 5);
    const shared = randomBytes(64 * 1024);
    // Views of one buffer (as zlib pushes them), chunks over the 1 MiB copy buffer, tiny and empty ones.
    const chunks = [shared.subarray(0, 100), shared.subarray(100, 40_000), Buffer.alloc(0), big, shared.subarray(40_000), Buffer.from('x')];
    const counts: number[] = [];
    const { tap, out } = await tapAll(chunks, (n) => counts.push(n));
    expect(out.equals(Buffer.concat(chunks))).toBe(true);
    expect(tap.digest()).toBe(sha1(chunks));
    expect(tap.bytes).toBe(out.length);
    expect(counts.at(-1)).toBe(out.length);
    // The chunks themselves went downstream untouched (not detached by a transfer).
    expect(shared.length).toBe(64 * 1024);
  });

  it('gives the SHA-1 of nothing for an empty stream, and has no digest before the end', async () => {
    expect((await tapAll([])).tap.digest()).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
    const tap = new ThreadedDigestTap();
    expect(() => tap.digest()).toThrow(/before the stream ended/);
    tap.destroy();
  });

  it('40 MiB in 1 MiB chunks, more than may wait for the hash at once: the digest of all of it', async () => {
    const block = randomBytes(1024 * 1024);
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.concat([Buffer.from([i]), block.subarray(1)]));
    const { tap } = await tapAll(chunks);
    expect(tap.digest()).toBe(sha1(chunks));
  });

  it('fails the pipeline when the source fails', async () => {
    const source = Readable.from((async function* () {
      yield randomBytes(1000);
      throw new Error('source broke');
    })());
    const tap = new ThreadedDigestTap();
    await expect(pipeline(source, tap, new Writable({ write(_c, _e, cb) { cb(); } }))).rejects.toThrow('source broke');
    expect(tap.destroyed).toBe(true);
  });
});
