import { constants, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { ToolError } from '../errors.js';
import { ioError } from '../io-errors.js';
import { MAX_MANIFEST_BYTES } from '../format/manifest.js';

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

/**
 * The bytes of a local manifest file, read with a bound: a regular file (after following a symlink; a FIFO or a
 * device is refused at once, never waited on) of at most MAX_MANIFEST_BYTES. `describe` words the error line.
 */
export async function readManifestBytes(path: string, describe = (why: string) => `cannot read manifest ${path}: ${why}`): Promise<Buffer> {
  const fail = (why: string, cause?: unknown, code: 'IO_ERROR' | 'MANIFEST_INVALID' = 'IO_ERROR') =>
    new ToolError(describe(why), { cause, code });
  let file: RegularFile;
  try {
    file = await openRegularFile(path, 'manifest');
  } catch (err) {
    const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
    const code = cause?.code;
    throw code === undefined ? fail('it is not a regular file', err, 'MANIFEST_INVALID')
      : fail(code === 'ENOENT' ? 'file not found'
        : code === 'EISDIR' ? 'it is a directory, not a manifest file'
        : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
        : cause!.message, cause);
  }
  try {
    const tooBig = () => fail(`it is over ${MAX_MANIFEST_BYTES >> 20} MiB, which no manifest is`, undefined, 'MANIFEST_INVALID');
    if (file.size > MAX_MANIFEST_BYTES) throw tooBig();
    // Read to the end, but never past the bound: the file may have grown since the stat.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead, buffer } = await file.handle.read(Buffer.alloc(1 << 16), 0, 1 << 16, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_MANIFEST_BYTES) throw tooBig();
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total);
  } catch (err) {
    if (err instanceof ToolError) throw err;
    throw fail((err as Error).message, err);
  } finally {
    await file.handle.close();
  }
}

/** Up to `length` bytes of the file at `position` (fewer where it ends). */
export async function readRange(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    let n = 0;
    for (let r = 1; r > 0 && n < length; n += r) r = (await fh.read(buf, n, length - n, position + n)).bytesRead;
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}
