import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A hidden, unique temporary name beside `path`: what is written there gets `path`'s name only when complete. */
export function tempPathBeside(path: string): string {
  const base = basename(path);
  // A file name may have 255 bytes: a long name is left out of its temporary name rather than overflow it.
  const shown = Buffer.byteLength(base) > 200 ? '' : base;
  return join(dirname(path), `.${shown}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Writes a file under a temporary name and renames it into place. */
export async function writeFileAtomically(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const temp = tempPathBeside(path);
  try {
    await writeFile(temp, data, { flag: 'wx', mode });
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
