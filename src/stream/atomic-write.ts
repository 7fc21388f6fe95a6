import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A hidden, unique temporary name beside `path`: what is written there gets `path`'s name only when complete. */
export function tempPathBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
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
