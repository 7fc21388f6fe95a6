import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.js';
import type { DiskLayout } from './disk-layout.js';

/**
 * GRUB 0.97's `setup (hd0)` done on an image file: stage1 into the MBR, e2fs_stage1_5 embedded in the sectors after
 * it, both patched as the grub shell's `embed` + `install … p (hd0,0)/boot/grub/stage2 /boot/grub/menu.lst` patch
 * them; stage2 and menu.lst stay files in the filesystem, which stage1.5 reads. Checked byte for byte against
 * Debian's grub-legacy 0.97-80 shell.
 */

const SECTOR = 512;

// stage1 (stage1.h)
const S1_BPB_START = 0x3;
const S1_BPB_END = 0x3e;
const S1_VERSION = 0x3e; // major, minor: 3, 2
const S1_BOOT_DRIVE = 0x40;
const S1_FORCE_LBA = 0x41;
const S1_STAGE2_ADDRESS = 0x42; // u16
const S1_STAGE2_SECTOR = 0x44; // u32
const S1_STAGE2_SEGMENT = 0x48; // u16
const S1_BOOT_DRIVE_CHECK = 0x4b; // a 2-byte jump over the "is it a hard disk" test
const S1_NT_MAGIC = 0x1b8; // disk signature, partition table, 0x55AA: kept from the disk

// stage1.5 as stage1 loads it: to 0x2000 (segment 0x200); its first sector's blocklist loads the rest.
const S15_ADDRESS = 0x2000;
const S15_SEGMENT = 0x200;
const S15_BLOCKLIST_START = 0x1f8; // u32 sector, then u16 count, u16 segment (kept)
const S15_BLOCKLIST_COUNT = 0x1fc;
const S15_VERSION = 0x206; // 3, 2 as in stage1
const S15_VERSION_STRING = 0x212; // "0.97\0", then u32 stage2's install partition, then "stage2 config\0"
const S15_FIELD_END = 0x270; // code follows

/** The install partition word for (hd0,N): drive byte 0xFF, then part1 = N, part2 = part3 = 0xFF (little endian). */
export function installPartition(partIndex: number): number {
  return ((0xff << 24) | (partIndex << 16) | 0xffff) >>> 0;
}

/** stage1 for sector 0 of a hard disk: loads stage1.5 from `stage15Sector`; BPB and partition table from `oldMbr`. */
export function patchStage1(stage1: Buffer, oldMbr: Buffer, stage15Sector: number): Buffer {
  if (stage1.length !== SECTOR) throw new ToolError(`GRUB's stage1 is ${stage1.length} bytes, expected 512`);
  if (stage1[S1_VERSION] !== 3 || stage1[S1_VERSION + 1] !== 2) {
    throw new ToolError(`GRUB's stage1 has version ${stage1[S1_VERSION]}.${stage1[S1_VERSION + 1]}, expected 3.2 (GRUB 0.9x)`);
  }
  const b = Buffer.from(stage1);
  oldMbr.copy(b, S1_BPB_START, S1_BPB_START, S1_BPB_END);
  b[S1_BOOT_DRIVE] = 0xff; // the drive the BIOS passes
  b[S1_FORCE_LBA] = 0;
  b.writeUInt16LE(S15_ADDRESS, S1_STAGE2_ADDRESS);
  b.writeUInt32LE(stage15Sector, S1_STAGE2_SECTOR);
  b.writeUInt16LE(S15_SEGMENT, S1_STAGE2_SEGMENT);
  // Trust the BIOS' drive number (jump → two NOPs), as `install` does for a hard disk.
  b[S1_BOOT_DRIVE_CHECK] = 0x90;
  b[S1_BOOT_DRIVE_CHECK + 1] = 0x90;
  oldMbr.copy(b, S1_NT_MAGIC, S1_NT_MAGIC, SECTOR);
  return b;
}

/** e2fs_stage1_5 embedded from `sector` on, told where the rest of itself is and where stage2 and menu.lst are. */
export function patchStage15(stage15: Buffer, sector: number, partIndex: number, stage2Path: string, configPath: string): Buffer {
  const sectors = Math.ceil(stage15.length / SECTOR);
  if (sectors < 2 || stage15[S15_VERSION] !== 3 || stage15[S15_VERSION + 1] !== 2) {
    throw new ToolError('GRUB\'s e2fs_stage1_5 is not a GRUB 0.9x stage 1.5 (version 3.2 expected)');
  }
  const b = Buffer.alloc(sectors * SECTOR);
  stage15.copy(b);
  b.writeUInt32LE(sector + 1, S15_BLOCKLIST_START);
  b.writeUInt16LE(sectors - 1, S15_BLOCKLIST_COUNT);
  const versionEnd = b.indexOf(0, S15_VERSION_STRING);
  const field = versionEnd + 1 + 4;
  const text = Buffer.from(`${stage2Path} ${configPath}\0`, 'latin1');
  if (versionEnd < 0 || field + text.length > S15_FIELD_END) throw new ToolError(`GRUB stage1.5: the paths ${stage2Path} and ${configPath} are too long`);
  b.writeUInt32LE(installPartition(partIndex), versionEnd + 1);
  b.fill(0, field, S15_FIELD_END);
  text.copy(b, field);
  return b;
}

/**
 * ext4 features left out when legacy GRUB reads the filesystem. Debian's 0.97-80 reads them, but they became mke2fs
 * defaults (e2fsprogs 1.43, 2016) after distributions moved to GRUB 2, so older GRUB 0.97 builds (ext4 patches of
 * the RHEL 6 era) may not; neither matters for an image of at most 10 GiB.
 */
export function legacyFeatures(fsType: string): string | undefined {
  return fsType === 'ext4' ? '^64bit,^metadata_csum' : undefined;
}

/** Stage files the volume carries in /boot/grub: what `setup` needs for an ext2/3/4 root. */
export const LEGACY_STAGE_FILES = ['stage1', 'stage2', 'e2fs_stage1_5'];

/**
 * Installs GRUB 0.97 for BIOS boot into an image whose root filesystem (partition 1 of an MBR) already holds
 * /boot/grub/stage2 and menu.lst. `stageDir` is /boot/grub of the staging tree.
 */
export async function installGrubLegacy(image: string, layout: DiskLayout, stageDir: string): Promise<void> {
  const area = layout.coreArea;
  if (layout.scheme !== 'mbr' || !area) throw new ToolError('Legacy GRUB needs an MBR partition table (-P mbr)');
  const stage1 = await readFile(join(stageDir, 'stage1'));
  const stage15 = await readFile(join(stageDir, 'e2fs_stage1_5'));
  const sector = area.start / SECTOR;
  const embedded = patchStage15(stage15, sector, 0, '/boot/grub/stage2', '/boot/grub/menu.lst');
  if (embedded.length > area.bytes) throw new ToolError(`GRUB's e2fs_stage1_5 (${stage15.length} bytes) does not fit in the ${area.bytes} bytes before the root partition`);
  const fh = await open(image, 'r+');
  try {
    const mbr = Buffer.alloc(SECTOR);
    await fh.read(mbr, 0, SECTOR, 0);
    await fh.write(embedded, 0, embedded.length, area.start);
    const boot = patchStage1(stage1, mbr, sector);
    await fh.write(boot, 0, SECTOR, 0);
  } finally {
    await fh.close();
  }
}
