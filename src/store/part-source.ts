import { Readable } from 'node:stream';
import type { Manifest } from '../format/manifest.js';
import { expectedPartSizes, readVerifiedPart, type PartStore } from './part-store.js';

/** A stage applied to the bytes inside the source, as a cipher is: each result must be new memory. */
export interface PartMap {
  update(chunk: Buffer): Buffer;
  final(): Buffer;
}

/**
 * The bundle's ciphertext: its parts in index order from a store, each bounded by the size the manifest allows and
 * checked against its SHA-1 before any of its bytes go downstream, so a bad part is named instead of surfacing later
 * as a decryption or gzip error. Holds the part being passed on plus `prefetch` parts read ahead (10 MiB each).
 *
 * With `map` (the decipher), what comes out is map's output, and the part buffers are reused: a part is done with as
 * soon as its last slice went through `map`, so no 10 MiB buffer per part is left for the garbage collector (parts
 * live long enough to reach the old generation, whose collection waits for some 64 MB of such garbage).
 */
export function createPartSource(store: PartStore, manifest: Pick<Manifest, 'parts' | 'bundledSize' | 'size'>, source: string, prefetch = 0, map?: PartMap): Readable {
  const sizes = expectedPartSizes(manifest, source);
  const largest = Math.max(0, ...sizes);
  const pool: Buffer[] = [];
  const read = (i: number) => {
    const into = map ? pool.pop() ?? Buffer.allocUnsafe(largest) : undefined;
    return readVerifiedPart(store, manifest.parts[i]!, sizes[i]!, undefined, into).then((p) => ({ data: p.data, into }));
  };

  async function* generate(): AsyncGenerator<Buffer> {
    const ahead: ReturnType<typeof read>[] = [];
    let next = 0;
    try {
      for (let i = 0; i < manifest.parts.length; i++) {
        while (next < manifest.parts.length && next <= i + prefetch) ahead.push(read(next++));
        // Queued reads must not become unhandled rejections if an earlier one fails.
        for (const p of ahead) p.catch(() => {});
        const { data, into } = await ahead.shift()!;
        // Passed on in 1 MiB slices (views, not copies): the stages after us then hold 1 MiB at a time, not 10.
        for (let o = 0; o < data.length; o += 1 << 20) {
          const slice = data.subarray(o, o + (1 << 20));
          if (!map) yield slice;
          else {
            const out = map.update(slice);
            if (out.length) yield out;
          }
        }
        if (into) pool.push(into);
      }
      if (map) {
        const out = map.final();
        if (out.length) yield out;
      }
    } finally {
      await Promise.allSettled(ahead);
    }
  }

  return Readable.from(generate(), { objectMode: false, highWaterMark: 1 << 20 });
}
