import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caseImage, readCase, sha1File } from '../helpers/images.js';

describe('test image generators', () => {
  it.each(['tiny', 'options', 'sparse-enddata'])('regenerate %s byte for byte', async (name) => {
    const dir = mkdtempSync(join(tmpdir(), 'amitools-img-'));
    const c = readCase(name);
    const path = join(dir, c.image.file);
    const { writeImage } = await import('../helpers/images.js');
    await writeImage(path, c.image);
    expect(sha1File(path)).toBe(c.image.sha1);
    expect(await caseImage(name, dir)).toMatch(c.image.file);
  });
});
