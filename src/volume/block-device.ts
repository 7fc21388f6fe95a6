// What Linux says about a block device before an image is written over it: its size and who is using it. Node has
// no BLKGETSIZE64 ioctl (and fstat reports size 0 for a device), so both come from sysfs, by the device's number.
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { readMounts } from './mounts.js';

/** The "major:minor" of a device number (st_rdev), as sysfs and mountinfo write it (glibc's encoding). */
export function majorMinor(rdev: number): string {
  const high = Math.floor(rdev / 2 ** 32);
  const major = ((rdev >>> 8) & 0xfff) | (high & 0xfffff000);
  const minor = ((rdev & 0xff) | (Math.floor(rdev / 4096) & 0xffffff00)) >>> 0;
  return `${major >>> 0}:${minor}`;
}

/** The device's size in bytes (sysfs counts 512-byte sectors whatever the device's block size). */
export async function blockDeviceSize(rdev: number, sysfs = '/sys'): Promise<number> {
  const text = await readFile(join(sysfs, 'dev', 'block', majorMinor(rdev), 'size'), 'utf8');
  const sectors = Number(text.trim());
  if (!Number.isSafeInteger(sectors) || sectors < 0) throw new Error(`unreadable size '${text.trim()}' in sysfs`);
  return sectors * 512;
}

interface SysDevice { name: string; devno: string; node: string }

/** The device and its partitions, as sysfs lists them. */
async function withPartitions(devno: string, sysfs: string): Promise<SysDevice[]> {
  const node = await realpath(join(sysfs, 'dev', 'block', devno));
  const out: SysDevice[] = [{ name: basename(node), devno, node }];
  for (const entry of await readdir(node).catch(() => [] as string[])) {
    const sub = join(node, entry);
    const isPartition = await stat(join(sub, 'partition')).then(() => true, () => false);
    if (!isPartition) continue;
    const dev = (await readFile(join(sub, 'dev'), 'utf8').catch(() => '')).trim();
    if (dev) out.push({ name: entry, devno: dev, node: sub });
  }
  return out;
}

/**
 * Who is using the device or one of its partitions, one phrase each ("loop0p1 is mounted at /mnt"), or none: mounts
 * (of this process's namespace), holders (device-mapper, md, LVM) and active swap.
 */
export async function blockDeviceUsers(rdev: number, o: { sysfs?: string; mountinfo?: string; swaps?: string } = {}): Promise<string[]> {
  const sysfs = o.sysfs ?? '/sys';
  const devices = await withPartitions(majorMinor(rdev), sysfs).catch(() => [] as SysDevice[]);
  if (devices.length === 0) devices.push({ name: majorMinor(rdev), devno: majorMinor(rdev), node: '' });
  const users: string[] = [];
  const mounts = await readMounts(o.mountinfo);
  for (const d of devices) {
    for (const m of mounts) if (m.device === d.devno) users.push(`${d.name} is mounted at ${m.mountPoint}`);
    const holders = d.node ? await readdir(join(d.node, 'holders')).catch(() => [] as string[]) : [];
    if (holders.length) users.push(`${d.name} is held by ${holders.sort().join(', ')}`);
  }
  const swaps = await readFile(o.swaps ?? '/proc/swaps', 'utf8').catch(() => '');
  for (const line of swaps.split('\n').slice(1)) {
    const path = line.split(/\s+/)[0]?.replace(/\\040/g, ' ');
    if (!path) continue;
    const st = await stat(path).catch(() => undefined);
    const d = st?.isBlockDevice() ? devices.find((x) => x.devno === majorMinor(st.rdev)) : undefined;
    if (d) users.push(`${d.name} is in use as swap`);
  }
  return users;
}
