import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PART_SIZE, isPlainFileName, partCount, partName } from '../../src/format/part-name.js';
import { REFERENCE, reference } from '../helpers/paths.js';

describe('partCount', () => {
  it('is ceil(size / 10 MiB), at least 1', () => {
    expect(PART_SIZE).toBe(10485760);
    expect(partCount(0)).toBe(1);
    expect(partCount(1)).toBe(1);
    expect(partCount(PART_SIZE)).toBe(1);
    expect(partCount(PART_SIZE + 1)).toBe(2);
    expect(partCount(10 * PART_SIZE)).toBe(10);
    expect(partCount(10 * 1024 ** 3 + 1024)).toBe(1025);
  });
  it('rejects negative and fractional sizes', () => {
    expect(() => partCount(-1)).toThrow(RangeError);
    expect(() => partCount(1.5)).toThrow(RangeError);
  });
});

describe('partName', () => {
  it('pads the index to the number of digits of the part count', () => {
    expect(partName('tiny.img', 0, 1)).toBe('tiny.img.part.0');
    expect(partName('x', 8, 9)).toBe('x.part.8');
    expect(partName('x', 0, 10)).toBe('x.part.00');
    expect(partName('x', 9, 10)).toBe('x.part.09');
    expect(partName('x', 10, 11)).toBe('x.part.10');
    expect(partName('x', 98, 99)).toBe('x.part.98');
    expect(partName('x', 0, 100)).toBe('x.part.000');
    expect(partName('x', 99, 100)).toBe('x.part.099');
    expect(partName('x', 999, 1000)).toBe('x.part.0999');
  });
  it('rejects indexes outside the part list', () => {
    expect(() => partName('x', 1, 1)).toThrow(RangeError);
    expect(() => partName('x', -1, 3)).toThrow(RangeError);
    expect(() => partName('x', 0, 0)).toThrow(RangeError);
  });
  it("gives every fixture's part names and part count", () => {
    const cases = readdirSync(REFERENCE).filter((c) => !c.startsWith('migrated'));
    expect(cases.length).toBeGreaterThanOrEqual(7);
    for (const c of cases) {
      const json = JSON.parse(readFileSync(reference(c, 'case.json'), 'utf8')) as {
        manifest: { file: string; bundled_size: number; parts: { index: number; filename: string }[] };
      };
      const prefix = json.manifest.file.replace(/\.manifest\.xml$/, '');
      expect(partCount(json.manifest.bundled_size), c).toBe(json.manifest.parts.length);
      for (const p of json.manifest.parts) expect(partName(prefix, p.index, json.manifest.parts.length)).toBe(p.filename);
    }
    const many = JSON.parse(readFileSync(reference('manyparts', 'case.json'), 'utf8'));
    expect(many.manifest.parts.at(-1).filename).toBe('manyparts.img.part.10');
  });
});

describe('isPlainFileName: the one rule for part, image and tar member names', () => {
  it('accepts plain names, ".." inside a name included', () => {
    for (const ok of ['tiny.img', 'tiny.img.part.0', 'v1..2.img', 'a..', 'image', 'x y', 'é✓\u{1F600}', 'a:b', '-rf', '~', 'a.']) {
      expect(isPlainFileName(ok), ok).toBe(true);
    }
  });
  it("refuses '/', '\\', NUL, control characters, '.', '..' and a leading '.'", () => {
    for (const bad of ['', '.', '..', '.bashrc', '.x.part.0', '../x', 'a/b', '/etc', 'a\\b', 'a\0b', 'a\nb', 'a\tb', 'a\u001b]0;x\u0007', 'a\u007fb', 'a\u0085b', 'a\u009bb']) {
      expect(isPlainFileName(bad), JSON.stringify(bad)).toBe(false);
    }
  });
  it('every part name of a plain prefix is plain', () => {
    expect(isPlainFileName(partName('v1..2.img', 10, 11))).toBe(true);
  });
});
