import { constants, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ToolError } from '../errors.js';
import { ioError } from '../io-errors.js';

export interface RegularFile { handle: FileHandle; size: number }

/**
 * Opens a local input for reading, following symlinks, and refuses anything but a regular file at once: a FIFO,
 * a device (/dev/zero) or a socket could block forever or never end. O_NONBLOCK keeps open(2) of a FIFO with no
 * writer from blocking; it changes nothing for a regular file. `what` names the file in messages ("part x.part.1").
 */
export async function openRegularFile(path: string, what: string): Promise<RegularFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    // open(2) of a socket fails with ENXIO: say what it is rather than "no such device".
    const st = await stat(path).catch(() => undefined);
    if (st && !st.isFile()) throw notRegular(what, path, st);
    throw ioError(err, path, `read ${what}`);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw notRegular(what, path, st);
    return { handle, size: st.size };
  } catch (err) {
    await handle.close().catch(() => {});
    throw ioError(err, path, `read ${what}`);
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'a special file';
}

function notRegular(what: string, path: string, st: Stats): ToolError {
  return new ToolError(`${what} ${path} is ${kindOf(st)}, not a regular file; give the path of the file itself`, { code: 'IO_ERROR' });
}
