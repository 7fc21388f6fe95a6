import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { ToolError } from '../errors.js';
import type { MountEntry } from './mounts.js';

const run = promisify(execFile);

export const EXT_TYPES = ['ext2', 'ext3', 'ext4'];
const BLOCK = 4096;

/** The filesystem the image gets: the volume's own type, label and UUID where that makes sense. */
export interface TargetFilesystem {
  type: string;
  label?: string;
  uuid: string;
  /** Why type/label/UUID are what they are, for --debug and warnings. */
  notes: string[];
}

/** LABEL/UUID/TYPE of a block device, as blkid reports them; empty when blkid can't tell. */
export async function probeDevice(dev: string): Promise<Record<string, string>> {
  try {
    const { stdout } = await run('blkid', ['-o', 'export', dev]);
    const out: Record<string, string> = {};
    for (const line of stdout.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * The same filesystem type as the volume (ext4 when it is not ext2/3/4, which mke2fs can't make), and — when the
 * volume is a whole filesystem, not a directory inside one — its label and UUID, so fstab and grub entries that
 * name them keep working. Otherwise a fresh UUID.
 */
export async function targetFilesystem(volume: string, mount: MountEntry | undefined): Promise<TargetFilesystem> {
  const notes: string[] = [];
  const srcType = mount?.fsType ?? 'unknown';
  const type = EXT_TYPES.includes(srcType) ? srcType : 'ext4';
  if (type !== srcType) notes.push(`the volume's filesystem is ${srcType}; the image gets ext4`);
  const whole = mount !== undefined && mount.mountPoint === volume && mount.root === '/';
  if (!whole) {
    notes.push(`${volume} is not the root of a filesystem: the image gets a new UUID and no label`);
    return { type, uuid: randomUUID(), notes };
  }
  const probe = mount.source.startsWith('/dev/') ? await probeDevice(mount.source) : {};
  if (!probe.UUID) notes.push(`the UUID of ${mount.source} could not be read: the image gets a new one`);
  return { type, label: probe.LABEL || undefined, uuid: probe.UUID || randomUUID(), notes };
}

/** Room the files may take in an ext filesystem of this size, and how many inodes it will have (mke2fs defaults). */
export function filesystemCapacity(partBytes: number, type: string): { bytes: number; inodes: number } {
  const blocks = Math.floor(partBytes / BLOCK);
  // mke2fs.conf: "small" (< 512 MiB) has an inode per 4 KiB, "default" one per 16 KiB; 256-byte inodes.
  const ratio = partBytes < 512 * 1024 * 1024 ? 4096 : 16384;
  const inodes = Math.floor(partBytes / ratio);
  const journalBlocks = type === 'ext2' ? 0
    : blocks < 2048 ? 0 : blocks < 32768 ? 1024 : blocks < 256 * 1024 ? 4096 : blocks < 512 * 1024 ? 8192 : blocks < 4096 * 1024 ? 16384 : 32768;
  const overhead = inodes * 256 + journalBlocks * BLOCK + Math.ceil(partBytes * 0.01);
  return { bytes: Math.max(0, partBytes - overhead), inodes };
}

/** mke2fs -d: the staging tree becomes the filesystem at `offset` in the image, nothing mounted. */
export async function makeFilesystem(o: {
  image: string; staging: string; offset: number; bytes: number; fs: TargetFilesystem;
  /** mke2fs -O changes to its defaults for the type, e.g. '^64bit,^metadata_csum'. */
  features?: string;
  /** Stops mke2fs (SIGTERM) when it fires. */
  signal?: AbortSignal;
}): Promise<void> {
  const args = ['-F', '-q', '-t', o.fs.type, '-b', String(BLOCK), '-U', o.fs.uuid];
  if (o.features) args.push('-O', o.features);
  if (o.fs.label) args.push('-L', o.fs.label);
  args.push('-E', `offset=${o.offset}`, '-d', o.staging, o.image, `${Math.floor(o.bytes / 1024)}k`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('mke2fs', args, { stdio: ['ignore', 'pipe', 'pipe'], signal: o.signal });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new ToolError(e.code === 'ENOENT' ? 'mke2fs is not installed: install the e2fsprogs package' : `mke2fs failed to start: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) return resolve();
      const last = out.trim().split('\n').filter(Boolean).slice(-2).join(' | ');
      const full = /Could not allocate block|No space left|Could not allocate inode/i.test(out);
      reject(new ToolError(full
        ? `The files do not fit in a ${Math.floor(o.bytes / 1048576)} MiB filesystem: use a larger --size (mke2fs: ${last})`
        : `mke2fs failed (exit code ${code}): ${last}`));
    });
  });
}
