import { ToolError } from '../errors.js';

/** Bundle parts are cut at exactly 10 MiB; only the last one may be shorter. */
export const PART_SIZE = 10 * 1024 * 1024;

/** Number of parts for a ciphertext of `bundledSize` bytes: ceil(size / PART_SIZE), never zero. */
export function partCount(bundledSize: number): number {
  if (!Number.isSafeInteger(bundledSize) || bundledSize < 0) throw new RangeError(`invalid bundled size: ${bundledSize}`);
  return Math.max(1, Math.ceil(bundledSize / PART_SIZE));
}

/** The exact length of part `index` of a bundle of `bundledSize` bytes: PART_SIZE, or the rest for the last part. */
export function partLength(bundledSize: number, index: number): number {
  return Math.min(PART_SIZE, bundledSize - index * PART_SIZE);
}

/**
 * Refuses a manifest whose sizes do not belong together: bundled_size must be AES-CBC ciphertext (a non-zero multiple
 * of 16) cut into exactly `count` parts, and no larger than the image (`size`) could make. That bound is generous —
 * tar headers, sparse maps and gzip's worst case add far less than size/16 + 1 MiB — so any real bundle passes.
 * Every reader of parts checks it first: the part lengths it gives are what reads are bounded by.
 */
export function checkPartLayout(m: { bundledSize: number; size: number; parts: unknown[] }, source: string): void {
  const { bundledSize, size } = m;
  const count = m.parts.length;
  const problem = bundledSize < 16 || bundledSize % 16 !== 0
    ? `<bundled_size> ${bundledSize} is not a length of AES-128-CBC ciphertext (a non-zero multiple of 16)`
    : partCount(bundledSize) !== count
      ? `<bundled_size> ${bundledSize} makes ${partCount(bundledSize)} parts of ${PART_SIZE} bytes, but the manifest lists ${count}`
      : bundledSize > size + Math.ceil(size / 16) + (1 << 20)
        ? `<bundled_size> ${bundledSize} is more than an image of <size> ${size} can bundle to`
        : undefined;
  if (problem) throw new ToolError(`Invalid manifest '${source}': ${problem}.`, { code: 'MANIFEST_INVALID' });
}

/**
 * `<prefix>.part.<i>`, i zero-padded to the number of decimal digits of the part COUNT
 * (1–9 parts: .part.0; 10–99: .part.00; 100+: .part.000), as the original names them.
 */
export function partName(prefix: string, index: number, count: number): string {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`invalid part count: ${count}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) throw new RangeError(`part index ${index} out of range for ${count} parts`);
  return `${prefix}.part.${String(index).padStart(String(count).length, '0')}`;
}

/** What isPlainFileName asks of a name, for messages: "… is not a plain file name (RULE)". */
export const PLAIN_FILE_NAME_RULE = "no '/', '\\', NUL or control characters, not '.' or '..', not starting with '.'";

/**
 * The one rule for a name that becomes a file in a directory (part and image names, bundle prefixes, the path
 * components of tar members), at both ends: what we write we read back, and a hostile manifest, bucket or tar
 * stream cannot reach outside the directory, replace a dotfile, or hide a file. `..` inside a name (`v1..2.img`)
 * is a plain name. Control characters are C0, DEL and C1.
 */
export function isPlainFileName(name: string): boolean {
  return name !== '' && !name.startsWith('.') && !/[/\\\u0000-\u001f\u007f-\u009f]/.test(name);
}
