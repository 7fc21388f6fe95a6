/** Bundle parts are cut at exactly 10 MiB; only the last one may be shorter. */
export const PART_SIZE = 10 * 1024 * 1024;

/** Number of parts for a ciphertext of `bundledSize` bytes: ceil(size / PART_SIZE), never zero. */
export function partCount(bundledSize: number): number {
  if (!Number.isSafeInteger(bundledSize) || bundledSize < 0) throw new RangeError(`invalid bundled size: ${bundledSize}`);
  return Math.max(1, Math.ceil(bundledSize / PART_SIZE));
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

/**
 * A name from a manifest or a tar header must be a plain file name, so that hostile input cannot reach outside a
 * directory, hide in it or drive a terminal: no '/', '\\', NUL or control characters, not starting with '.'.
 */
export function isPlainFileName(name: string): boolean {
  return name !== '' && !name.startsWith('.') && !/[/\\\x00-\x1f\x7f-\x9f]/.test(name);
}
