import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { partsFromDirectory } from '../../src/bundle/unbundle.js';
import { PART_SIZE } from '../../src/format/part-name.js';
import type { ManifestPart } from '../../src/format/manifest.js';

const dir = mkdtempSync(join(tmpdir(), 'amitools-parts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('partsFromDirectory with the manifest\'s parts (reads the next part ahead)', () => {
  // A full part, a short last part, and a file longer than a part (not ours; its rest is streamed, not held).
  const contents = [randomBytes(PART_SIZE), randomBytes(1234), randomBytes(PART_SIZE + 4567)];
  const parts: ManifestPart[] = contents.map((c, i) => {
    writeFileSync(join(dir, `p.part.${i}`), c);
    return { filename: `p.part.${i}`, digest: '' };
  });

  it('gives each part byte for byte, in order or not', async () => {
    const open = partsFromDirectory(dir, parts);
    for (const i of [0, 1, 2]) expect((await readAll(await open(parts[i]!, i))).equals(contents[i]!), `part ${i}`).toBe(true);
    const again = partsFromDirectory(dir, parts);
    expect((await readAll(await again(parts[2]!, 2))).equals(contents[2]!)).toBe(true);
    expect((await readAll(await again(parts[0]!, 0))).equals(contents[0]!)).toBe(true);
  });

  it('a missing part fails when it is opened, and only then', async () => {
    const withMissing = [...parts.slice(0, 1), { filename: 'p.part.missing', digest: '' }];
    const open = partsFromDirectory(dir, withMissing);
    // Opening part 0 starts reading the missing part 1: no unhandled rejection may come of it.
    expect((await readAll(await open(withMissing[0]!, 0))).equals(contents[0]!)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    await expect(Promise.resolve(open(withMissing[1]!, 1))).rejects.toThrow(/ENOENT/);
  });
});
