import { Readable } from 'node:stream';
import type { Manifest } from '../format/manifest.js';
import { expectedPartSizes, readVerifiedPart, type PartStore } from './part-store.js';

/**
 * The bundle's ciphertext: its parts in index order from a store, each bounded by the size the manifest allows and
 * checked against its SHA-1 before any of its bytes go downstream, so a bad part is named instead of surfacing later
 * as a decryption or gzip error. Holds the part being passed on plus `prefetch` parts read ahead (10 MiB each).
 */
export function createPartSource(store: PartStore, manifest: Pick<Manifest, 'parts' | 'bundledSize' | 'size'>, source: string, prefetch = 0): Readable {
  const sizes = expectedPartSizes(manifest, source);
  const read = (i: number) => readVerifiedPart(store, manifest.parts[i]!, sizes[i]!).then((p) => p.data);

  async function* generate(): AsyncGenerator<Buffer> {
    const ahead: Promise<Buffer>[] = [];
    let next = 0;
    try {
      for (let i = 0; i < manifest.parts.length; i++) {
        while (next < manifest.parts.length && next <= i + prefetch) ahead.push(read(next++));
        // Queued reads must not become unhandled rejections if an earlier one fails.
        for (const p of ahead) p.catch(() => {});
        const data = await ahead.shift()!;
        // Passed on in 1 MiB slices (views, not copies): the stages after us then hold 1 MiB at a time, not 10.
        for (let o = 0; o < data.length; o += 1 << 20) yield data.subarray(o, o + (1 << 20));
      }
    } finally {
      await Promise.allSettled(ahead);
    }
  }

  return Readable.from(generate(), { objectMode: false, highWaterMark: 1 << 20 });
}
