import { AmiToolsError, ToolError } from './errors.js';

/** What went wrong, and what the user can do about it, for the system errors files run into. */
const REASONS: Record<string, [reason: string, advice: string]> = {
  ENOENT: ['it does not exist', 'check the path'],
  EACCES: ['permission denied', 'check its permissions, or run as a user allowed to'],
  EPERM: ['operation not permitted', 'check its permissions and attributes, or run as a user allowed to'],
  EISDIR: ['a directory is in the way', 'move it away or choose another path'],
  ENOTEMPTY: ['a directory is in the way', 'move it away or choose another path'],
  ENOTDIR: ['a file is in the way of its directory', 'check the path'],
  EEXIST: ['it already exists', 'remove it or choose another name'],
  ENOSPC: ['the disk is full', 'free some space and run again'],
  EDQUOT: ['the disk quota is exceeded', 'free some space or raise the quota, and run again'],
  EROFS: ['the file system is read-only', 'choose a writable location'],
  EFBIG: ['the file would be larger than the file system or the file size limit (ulimit -f) allows', 'raise the limit or choose another file system'],
  ENAMETOOLONG: ['the name is too long for the file system', 'use a shorter name or path'],
  ELOOP: ['too many levels of symbolic links', 'check the path'],
  EMFILE: ['too many open files', 'raise the limit (ulimit -n) and run again'],
  ENFILE: ['too many open files in the system', 'close some programs and run again'],
  EIO: ['an input/output error from the device', 'check the disk (dmesg) and run again'],
  ENXIO: ['no such device or address', 'give the path of a regular file'],
  ENODEV: ['no such device', 'give the path of a regular file'],
  EBUSY: ['the file or device is busy', 'run again when it is free'],
  ETXTBSY: ['the file is busy', 'run again when it is free'],
  EXDEV: ['it is on another file system', 'choose a location on the same file system'],
  EINVAL: ['the operation is not valid for this file', 'give the path of a regular file'],
  ERR_FS_FILE_TOO_LARGE: ['it is too large to be read into memory', 'check that it is the right file'],
  ERR_STRING_TOO_LONG: ['it is too large to be read into memory', 'check that it is the right file'],
};

/**
 * Turns a system error met while doing `action` ("read", "write", "create", …) on `path` into one sentence naming
 * the file, the reason and what to do, with code IO_ERROR. Our own errors pass through unchanged.
 */
export function ioError(err: unknown, path: string | undefined, action: string): AmiToolsError {
  if (err instanceof AmiToolsError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const file = path ?? (e?.syscall === 'rename' ? (e as { dest?: string }).dest : undefined) ?? e?.path;
  const what = `cannot ${action}${file !== undefined ? ` ${file}` : ''}`;
  const known = code !== undefined ? REASONS[code] : undefined;
  // 'Invalid string length' (a RangeError with no code) comes from reading a huge file into one string.
  const tooLarge = err instanceof RangeError && /Invalid string length|Array buffer allocation/i.test(err.message);
  const [reason, advice] = known ?? (tooLarge ? REASONS.ERR_FS_FILE_TOO_LARGE! : [firstLine(e), '']);
  const shownCode = known && code?.startsWith('E') ? ` (${code})` : '';
  const result = new ToolError(`${what}: ${reason}${shownCode}${advice ? `; ${advice}` : ''}`, { cause: err, code: 'IO_ERROR' });
  // --debug shows where the system error arose, not only where it was put into words.
  if (err instanceof Error && err.stack) result.stack += `\nCaused by: ${err.stack}`;
  return result;
}

const SYSCALL_ACTIONS: Record<string, string> = {
  open: 'open', read: 'read', pread: 'read', write: 'write', pwrite: 'write', writev: 'write', fsync: 'write',
  ftruncate: 'write', close: 'write', rename: 'write', unlink: 'remove', rm: 'remove', rmdir: 'remove',
  mkdir: 'create the directory', mkdtemp: 'create a directory in', scandir: 'list', opendir: 'list', stat: 'look at',
  lstat: 'look at', fstat: 'look at', chmod: 'set the mode of', fchmod: 'set the mode of', utime: 'set the time of',
  futime: 'set the time of', chown: 'set the owner of', fchown: 'set the owner of', link: 'link', symlink: 'link',
  copyfile: 'copy', realpath: 'resolve', readlink: 'resolve', access: 'access',
};

/**
 * The verb for an error a file operation threw without the caller's context ("write", "rename", …), or undefined
 * when it is not a file system error (network errors and our own errors are not).
 */
export function fileErrorAction(err: unknown): string | undefined {
  if (!(err instanceof Error) || err instanceof AmiToolsError) return undefined;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ERR_FS_FILE_TOO_LARGE' || e.code === 'ERR_STRING_TOO_LONG') return 'read';
  if (err instanceof RangeError && /Invalid string length/.test(err.message)) return 'read';
  if (typeof e.code !== 'string' || !/^E[A-Z]+$/.test(e.code)) return undefined;
  // Sockets fail in read and write too (ECONNRESET, EPIPE): only the codes files meet, or an error naming a path.
  if (!(e.code in REASONS) && e.path === undefined) return undefined;
  return (e.syscall !== undefined ? SYSCALL_ACTIONS[e.syscall] : undefined) ?? 'access';
}

function firstLine(e: Error | undefined): string {
  const text = e?.message ?? String(e);
  // Node's "CODE: text, syscall 'path'" becomes "text".
  return text.split('\n')[0]!.replace(/^[A-Z_]+: /, '').replace(/, [a-z]+(?: '[^']*')*$/, '');
}
