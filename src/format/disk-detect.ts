// What an image's first sectors say about how EC2 must boot it: a disk with boot code is an HVM image, a bare file
// system is a paravirtual one (PV-GRUB reads the file system itself). Pure: the caller reads the bytes.

export type VirtualizationType = 'hvm' | 'paravirtual';
export const VIRTUALIZATION_TYPES: readonly VirtualizationType[] = ['hvm', 'paravirtual'];

/** Bytes of the image's start the detection looks at: the MBR, a GPT header (512- or 4096-byte sectors), an ext superblock. */
export const DETECT_BYTES = 8192;

/** The type when the sectors tell it, and why (for a notice either way). */
export interface Detection { type?: VirtualizationType; reason: string }

const SECTOR = 512;
const BOOT_CODE = 440; // before the disk signature and the partition table
const TABLE = 446;
const EXT_MAGIC_AT = 1024 + 56;

export interface MbrEntry { status: number; type: number; start: number; sectors: number }

/** The four primary entries of an MBR (the caller checks hasPartitionTable first). */
export function mbrEntries(head: Buffer): MbrEntry[] {
  return [0, 1, 2, 3].map((i) => {
    const o = TABLE + 16 * i;
    return { status: head[o]!, type: head[o + 4]!, start: head.readUInt32LE(o + 8), sectors: head.readUInt32LE(o + 12) };
  });
}

/** A partition table as fdisk, sfdisk or sgdisk write one: boot flags 0 or 0x80, at least one used entry, each past sector 0. */
export function hasPartitionTable(head: Buffer): boolean {
  if (head.length < SECTOR || head[510] !== 0x55 || head[511] !== 0xaa) return false;
  const entries = mbrEntries(head);
  if (entries.some((e) => e.status !== 0 && e.status !== 0x80)) return false;
  const used = entries.filter((e) => e.type !== 0);
  return used.length > 0 && used.every((e) => e.start > 0 && e.sectors > 0);
}

/** The sector size (512 or 4096) at which a GPT header starts, if there is one. */
export function gptSectorSize(head: Buffer): number | undefined {
  return [SECTOR, 4096].find((at) => head.length >= at + 8 && head.toString('latin1', at, at + 8) === 'EFI PART');
}

/** The filesystem type from its superblock: ext2/3/4 (the magic at 1080), XFS, or unknown. `sb`: 2 KiB from the filesystem's start. */
export function filesystemType(sb: Buffer): 'ext' | 'xfs' | undefined {
  if (sb.length >= EXT_MAGIC_AT + 2 && sb.readUInt16LE(EXT_MAGIC_AT) === 0xef53) return 'ext';
  if (sb.length >= 4 && sb.toString('latin1', 0, 4) === 'XFSB') return 'xfs';
  return undefined;
}

function isZero(buf: Buffer): boolean {
  return buf.every((b) => b === 0);
}

/**
 * The virtualization type an image needs, from its first DETECT_BYTES (fewer for a smaller image):
 * a GPT disk (protective MBR and GPT header) or an MBR disk with boot code → hvm; a bare ext2/3/4 or XFS file
 * system (no partition table) → paravirtual; anything else → unknown, with the reason.
 */
export function detectVirtualization(head: Buffer): Detection {
  if (hasPartitionTable(head)) {
    if (mbrEntries(head).some((e) => e.type === 0xee) && gptSectorSize(head) !== undefined) return { type: 'hvm', reason: 'a GPT disk (protective MBR and GPT header)' };
    if (!isZero(head.subarray(0, BOOT_CODE))) return { type: 'hvm', reason: 'an MBR disk with boot code' };
    return { reason: 'an MBR disk without boot code in its first sector' };
  }
  const fs = filesystemType(head);
  if (fs === 'ext') return { type: 'paravirtual', reason: 'a bare ext2/3/4 file system (no partition table)' };
  if (fs === 'xfs') return { type: 'paravirtual', reason: 'a bare XFS file system (no partition table)' };
  return { reason: 'neither a partition table nor a known file system (ext2/3/4, XFS) in its first sectors' };
}
