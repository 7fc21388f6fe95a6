// The part source reads the next part ahead (prefetch) so reading overlaps decrypting, inflating and writing.
import { afterAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPartSource } from '../../src/store/part-source.js';
import { DirectoryStore } from '../../src/store/directory-store.js';
import { PART_SIZE } from '../../src/format/part-name.js';

const dir = mkdtempSync(join(tmpdir(), 'amitools-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const contents = [randomBytes(PART_SIZE), randomBytes(PART_SIZE), randomBytes(1232)];
const parts = contents.map((c, i) => {
  writeFileSync(join(dir, `p.part.${i}`), c);
  return { filename: `p.part.${i}`, digest: createHash('sha1').update(c).digest('hex') };
});
const manifest = { parts, bundledSize: 2 * PART_SIZE + 1232, size: 2 * PART_SIZE };

async function drain(r: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('createPartSource', () => {
  for (const prefetch of [0, 1, 2]) {
    it(`gives the parts byte for byte, in order (prefetch ${prefetch}), in pieces of at most 1 MiB`, async () => {
      let largest = 0;
      const all = await drain((async function* () {
        for await (const c of createPartSource(new DirectoryStore(dir), manifest, dir, prefetch)) { largest = Math.max(largest, c.length); yield c as Buffer; }
      })());
      expect(all.equals(Buffer.concat(contents))).toBe(true);
      expect(largest).toBeLessThanOrEqual(1 << 20);
    });
  }

  for (const prefetch of [0, 1]) {
    it(`with a map (the decipher): its output, in order, and ${prefetch + 1} part buffer(s) used over and over (prefetch ${prefetch})`, async () => {
      const store = new DirectoryStore(dir);
      const buffers = new Set<Buffer>();
      const recording = Object.assign(Object.create(store) as DirectoryStore, {
        readPart: (name: string, size: number, onBytes?: (n: number) => void, into?: Buffer) => {
          if (into) buffers.add(into);
          return store.readPart(name, size, onBytes, into);
        },
      });
      // A map that copies and marks its output, so that a reused buffer overwritten too early would show.
      const map = { update: (c: Buffer) => Buffer.from(c.map((b) => b ^ 0x5a)), final: () => Buffer.from('end') };
      const all = await drain(createPartSource(recording, manifest, dir, prefetch, map));
      expect(all.equals(Buffer.concat([Buffer.concat(contents).map((b) => b ^ 0x5a), Buffer.from('end')]))).toBe(true);
      expect(buffers.size).toBe(prefetch + 1);
    });
  }

  it('a missing part read ahead fails the stream once, naming it, with no unhandled rejection', async () => {
    const missing = { ...manifest, parts: [parts[0]!, { filename: 'p.part.missing', digest: parts[1]!.digest }, parts[2]!] };
    await expect(drain(createPartSource(new DirectoryStore(dir), missing, dir, 2))).rejects.toThrow(/p\.part\.missing: it does not exist/);
  });
});
