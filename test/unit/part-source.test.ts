// The part source reads the next part ahead (prefetch) so reading overlaps decrypting, inflating and writing.
import { afterAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPartSource } from '../../src/store/part-source.js';
import { DirectoryStore } from '../../src/store/directory-store.js';
import { readVerifiedPart, type PartStore } from '../../src/store/part-store.js';
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

describe('readVerifiedPart hashes a part as its bytes arrive', () => {
  const part = parts[0]!;
  const data = contents[0]!;
  /** A store over `data` that delivers it by `deliver` (into `into` or not, reporting bytes its own way). */
  const storeOf = (deliver: (into: Buffer, onBytes: (n: number) => void) => Buffer, rereadOnMismatch = false): PartStore => ({
    location: 'test', rereadOnMismatch, readManifest: async () => Buffer.alloc(0), createWriter: () => { throw new Error('unused'); },
    readPart: async (_name, size, onBytes, into) => deliver(into ?? Buffer.allocUnsafe(size), onBytes ?? (() => {})),
  });

  it('a read that starts over (a retried transfer) takes back what it reported and is still verified', async () => {
    const store = storeOf((into, onBytes) => {
      into.fill(0xee, 0, 3 << 20);
      onBytes(3 << 20); // garbage from a first attempt, then taken back
      onBytes(-(3 << 20));
      for (let at = 0; at < data.length; at += 1 << 20) {
        data.copy(into, at, at, at + (1 << 20));
        onBytes(Math.min(1 << 20, data.length - at));
      }
      return into.subarray(0, data.length);
    });
    expect((await readVerifiedPart(store, part, data.length)).data.equals(data)).toBe(true);
  });

  it('a store that does not use `into`, or reports bytes before they are in place, is not taken for a corrupt part', async () => {
    const own = storeOf((_into, onBytes) => { onBytes(data.length); return Buffer.from(data); });
    expect((await readVerifiedPart(own, part, data.length)).data.equals(data)).toBe(true);
    const early = storeOf((into, onBytes) => { onBytes(data.length); data.copy(into); return into.subarray(0, data.length); });
    expect((await readVerifiedPart(early, part, data.length, undefined, Buffer.alloc(data.length))).data.equals(data)).toBe(true);
  });

  it('a corrupt part is still named, with the SHA-1 of what was read', async () => {
    const bad = Buffer.from(data);
    bad[12345] ^= 1;
    const store = storeOf((into, onBytes) => { bad.copy(into); onBytes(bad.length); return into.subarray(0, bad.length); });
    const sha1 = createHash('sha1').update(bad).digest('hex');
    await expect(readVerifiedPart(store, part, data.length)).rejects.toThrow(`part p.part.0 in test is corrupt: its SHA-1 is ${sha1} but the manifest says ${part.digest}`);
  });
});
