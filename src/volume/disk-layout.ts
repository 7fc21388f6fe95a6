import { spawn } from 'node:child_process';
import { open, readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ToolError } from '../errors.js';

export type PartitionScheme = 'mbr' | 'gpt' | 'none';
export const PARTITION_SCHEMES: PartitionScheme[] = ['mbr', 'gpt', 'none'];

const MiB = 1024 * 1024;
const SECTOR = 512;
const GPT_BACKUP_SECTORS = 33;
export const BIOS_BOOT_GUID = '21686148-6449-6E6F-744E-656564454649';
export const LINUX_FS_GUID = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/**
 * Where things go in the image. The root filesystem is always partition 1, so root=/dev/xvda1-style names work
 * with either table; with GPT the BIOS boot partition (GRUB's core image) is partition 2, placed first at 1 MiB.
 */
export interface DiskLayout {
  scheme: PartitionScheme;
  imageBytes: number;
  rootStart: number;
  rootBytes: number;
  /** Where GRUB 2's core image may go: the MBR gap, or the BIOS boot partition; absent without a table. */
  coreArea?: { start: number; bytes: number };
}

export function planLayout(scheme: PartitionScheme, sizeMB: number): DiskLayout {
  const imageBytes = sizeMB * MiB;
  switch (scheme) {
    case 'none':
      return { scheme, imageBytes, rootStart: 0, rootBytes: imageBytes };
    case 'mbr':
      return { scheme, imageBytes, rootStart: MiB, rootBytes: imageBytes - MiB, coreArea: { start: SECTOR, bytes: MiB - SECTOR } };
    case 'gpt': {
      // The root partition ends on a MiB boundary before the backup GPT.
      const end = Math.floor((imageBytes - GPT_BACKUP_SECTORS * SECTOR) / MiB) * MiB;
      return { scheme, imageBytes, rootStart: 2 * MiB, rootBytes: end - 2 * MiB, coreArea: { start: MiB, bytes: MiB } };
    }
  }
}

/** The sfdisk script for a layout (sizes in sectors). */
export function sfdiskScript(l: DiskLayout): string {
  const s = (b: number) => b / SECTOR;
  if (l.scheme === 'mbr') {
    return `label: dos\nunit: sectors\n\nstart=${s(l.rootStart)}, size=${s(l.rootBytes)}, type=83, bootable\n`;
  }
  if (l.scheme === 'gpt') {
    const core = l.coreArea!;
    return 'label: gpt\nunit: sectors\n\n' +
      `start=${s(l.rootStart)}, size=${s(l.rootBytes)}, type=${LINUX_FS_GUID}, name="root"\n` +
      `start=${s(core.start)}, size=${s(core.bytes)}, type=${BIOS_BOOT_GUID}, name="BIOS boot"\n`;
  }
  throw new Error('no partition table for scheme none');
}

/** Writes the partition table with sfdisk (util-linux), which handles files as well as devices. */
export async function writePartitionTable(image: string, l: DiskLayout): Promise<void> {
  if (l.scheme === 'none') return;
  await new Promise<void>((resolve, reject) => {
    const child = spawn('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', '--wipe', 'never', image], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new ToolError(e.code === 'ENOENT' ? 'sfdisk is not installed: install the fdisk package' : `sfdisk failed to start: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new ToolError(`Writing the ${l.scheme} partition table with sfdisk failed: ${err.trim().split('\n').pop()}`))));
    child.stdin.end(sfdiskScript(l));
  });
}

/** The partition table type on a disk's first sectors: GPT signature in LBA 1, else an MBR signature, else none. */
export function tableTypeOf(firstSectors: Buffer): PartitionScheme {
  if (firstSectors.length >= 1024 && firstSectors.subarray(512, 520).toString('latin1') === 'EFI PART') return 'gpt';
  if (firstSectors.length >= 512 && firstSectors[510] === 0x55 && firstSectors[511] === 0xaa) {
    // A protective MBR (type 0xEE) with an unreadable LBA 1 is still GPT.
    return firstSectors[450] === 0xee ? 'gpt' : 'mbr';
  }
  return 'none';
}

async function readHead(dev: string): Promise<Buffer | undefined> {
  try {
    const fh = await open(dev, 'r');
    try {
      const buf = Buffer.alloc(1024);
      const { bytesRead } = await fh.read(buf, 0, 1024, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

export interface SchemeGuess { scheme: PartitionScheme; reason: string }

/**
 * The partition table type of the disk under a filesystem (its "major:minor" from mountinfo), through sysfs:
 * a partition → its parent disk's table; a whole disk → none; device-mapper → the device below it; no block
 * device (overlay, tmpfs, a container) → gpt.
 */
export async function detectScheme(device: string, o: { sysfs?: string; devDir?: string } = {}): Promise<SchemeGuess> {
  const sysfs = o.sysfs ?? '/sys';
  const devDir = o.devDir ?? '/dev';
  let node: string;
  try {
    node = await realpath(join(sysfs, 'dev', 'block', device));
  } catch {
    return { scheme: 'gpt', reason: `the volume is not on a block device (${device})` };
  }
  for (let depth = 0; depth < 8; depth++) {
    const slaves = await readdir(join(node, 'slaves')).catch(() => [] as string[]);
    if (slaves.length === 0) break;
    // device-mapper, md: follow the first device below; the table is the one that disk carries.
    node = await realpath(join(node, 'slaves', slaves.sort()[0]));
  }
  const isPartition = await stat(join(node, 'partition')).then(() => true, () => false);
  if (!isPartition) return { scheme: 'none', reason: `${basename(node)} is a whole disk without partitions` };
  const disk = basename(dirname(node));
  const head = await readHead(join(devDir, disk));
  if (!head) return { scheme: 'gpt', reason: `the partition table of ${disk} could not be read` };
  const scheme = tableTypeOf(head);
  return { scheme: scheme === 'none' ? 'gpt' : scheme, reason: `${basename(node)} is on ${disk}, which has ${scheme === 'mbr' ? 'an MBR' : 'a GPT'} partition table` };
}

/** sysfs' name for a "major:minor", for messages. */
export async function deviceName(device: string, sysfs = '/sys'): Promise<string | undefined> {
  try {
    const uevent = await readFile(join(sysfs, 'dev', 'block', device, 'uevent'), 'utf8');
    return /^DEVNAME=(.*)$/m.exec(uevent)?.[1];
  } catch {
    return undefined;
  }
}
