// Where an image's root filesystem starts: the first Linux partition of an MBR or GPT disk, or the image itself when
// it is a bare filesystem. Pure: the caller reads the image's first sectors (ROOT_SEARCH_BYTES). What counts as a
// partition table is disk-detect's rule, so the virtualization type and the root search agree about an image.
import { gptSectorSize, hasPartitionTable, mbrEntries } from './disk-detect.js';

export { filesystemType } from './disk-detect.js';

/** Enough of the image for an MBR, a GPT header and its first 128 entries with 512- or 4096-byte sectors. */
export const ROOT_SEARCH_BYTES = 64 << 10;

const LINUX_TYPES = new Set([
  '0FC63DAF-8483-4772-8E79-3D69D8477DE4', // Linux filesystem
  '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', // Linux root (x86-64)
  '44479540-F297-41B2-9AF7-D131D5F0458A', // Linux root (x86)
  'B921B045-1DF0-41C3-AF44-4C6F280D3FAE', // Linux root (arm64)
]);

export type RootLocation =
  | { kind: 'partition'; offset: number; description: string }
  | { kind: 'bare'; offset: 0; description: string }
  | { kind: 'none'; description: string };

function guid(b: Buffer): string {
  const hex = (x: Buffer) => x.toString('hex').toUpperCase();
  const rev = (x: Buffer) => hex(Buffer.from(x).reverse());
  return `${rev(b.subarray(0, 4))}-${rev(b.subarray(4, 6))}-${rev(b.subarray(6, 8))}-${hex(b.subarray(8, 10))}-${hex(b.subarray(10, 16))}`;
}

function gpt(head: Buffer): RootLocation | undefined {
  const sector = gptSectorSize(head);
  if (sector !== undefined && head.length >= sector + 92) {
    const entriesAt = Number(head.readBigUInt64LE(sector + 72)) * sector;
    const count = head.readUInt32LE(sector + 80);
    const size = head.readUInt32LE(sector + 84);
    if (size < 128 || size > 4096) return { kind: 'none', description: 'a GPT disk with an unreadable partition table' };
    for (let i = 0; i < count; i++) {
      const at = entriesAt + i * size;
      if (at + 128 > head.length) break;
      const type = guid(head.subarray(at, at + 16));
      const first = Number(head.readBigUInt64LE(at + 32));
      if (LINUX_TYPES.has(type) && first > 0) return { kind: 'partition', offset: first * sector, description: `partition ${i + 1} of a GPT disk, at byte ${first * sector}` };
    }
    return { kind: 'none', description: 'a GPT disk without a Linux partition among its first entries' };
  }
  return undefined;
}

/** The root filesystem's byte offset in the image, from its first ROOT_SEARCH_BYTES. */
export function findRootFilesystem(head: Buffer): RootLocation {
  if (hasPartitionTable(head)) {
    const entries = mbrEntries(head);
    if (entries.some((e) => e.type === 0xee)) return gpt(head) ?? { kind: 'none', description: 'a protective MBR without a GPT header' };
    const i = entries.findIndex((e) => e.type === 0x83 && e.start > 0);
    if (i >= 0) return { kind: 'partition', offset: entries[i]!.start * 512, description: `partition ${i + 1} of an MBR disk, at byte ${entries[i]!.start * 512}` };
    return { kind: 'none', description: 'an MBR disk without a Linux (type 83) primary partition' };
  }
  return { kind: 'bare', offset: 0, description: 'the whole image (no partition table)' };
}
