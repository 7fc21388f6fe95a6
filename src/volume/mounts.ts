import { readFile } from 'node:fs/promises';

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  id: number;
  parentId: number;
  /** "major:minor" of the filesystem's device. */
  device: string;
  /** The directory of the filesystem mounted here (not "/" for bind mounts of a subdirectory). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
}

/** Filesystems that live on this machine's disks: copied by default. Anything else needs --all. */
export const LOCAL_FS_TYPES = new Set([
  'ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'jfs', 'reiserfs', 'f2fs', 'vfat', 'exfat', 'zfs', 'bcachefs',
]);

/** The kernel escapes space, tab, newline and backslash in paths as \ooo. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [left, right] = line.split(' - ');
    if (right === undefined) continue;
    const f = left.split(' ');
    const r = right.split(' ');
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      device: f[2],
      root: unescapeOctal(f[3]),
      mountPoint: unescapeOctal(f[4]),
      fsType: r[0],
      source: unescapeOctal(r[1] ?? ''),
    });
  }
  return out;
}

export async function readMounts(path = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  return parseMountInfo(await readFile(path, 'utf8'));
}

/** True when `path` is `dir` or below it (both absolute, normalised). */
export function isUnder(path: string, dir: string): boolean {
  if (dir === '/') return path.startsWith('/');
  return path === dir || path.startsWith(dir + '/');
}

/** The mount that holds `path`: the longest mount point above it, the last one mounted when stacked. */
export function mountOf(path: string, mounts: MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    if (!isUnder(path, m.mountPoint)) continue;
    if (!best || m.mountPoint.length >= best.mountPoint.length) best = m;
  }
  return best;
}

/**
 * Mount points strictly below the volume whose filesystem is not local (nfs, tmpfs, proc, overlay, …), deepest
 * mounts considered as stacked: what --all would add. Sorted, without duplicates.
 */
export function nonLocalMountsUnder(volume: string, mounts: MountEntry[]): string[] {
  const seen = new Set<string>();
  for (const m of mounts) {
    if (m.mountPoint === volume || !isUnder(m.mountPoint, volume)) continue;
    const top = mountOf(m.mountPoint, mounts);
    if (top && !LOCAL_FS_TYPES.has(top.fsType)) seen.add(m.mountPoint);
  }
  return [...seen].sort();
}
