import { join } from 'node:path';
import type { ManifestPart } from '../format/manifest.js';
import { partLength } from '../format/part-name.js';
import { partLengthError } from '../stream/length-cap.js';
import { openRegularFile, type RegularFile } from '../stream/regular-file.js';

/**
 * Opens a bundle's part in a local directory: a regular file (a FIFO, device or socket is refused at once) of
 * exactly `length` bytes, the length the manifest's bundled_size gives it.
 */
export async function openLocalPart(dir: string, part: ManifestPart, length: number): Promise<RegularFile> {
  const path = join(dir, part.filename);
  const file = await openRegularFile(path, 'part');
  if (file.size !== length) {
    await file.handle.close();
    throw partLengthError(`part ${path}`, `${file.size} bytes long`, length, 'bundle or download it again');
  }
  return file;
}

/** Checks parts `from`… of a bundle in a local directory before any work starts: a bad one stops us first. */
export async function checkLocalParts(dir: string, parts: ManifestPart[], bundledSize: number, from = 0): Promise<void> {
  for (let i = from; i < parts.length; i++) await (await openLocalPart(dir, parts[i]!, partLength(bundledSize, i))).handle.close();
}
