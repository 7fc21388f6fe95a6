// Where an image's root filesystem starts: the first Linux partition of an MBR or GPT disk, or the image itself when
// it is a bare filesystem. Pure: the caller reads the image's first sectors (ROOT_SEARCH_BYTES).

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
  for (const sector of [512, 4096]) {
    if (head.length < sector + 92 || head.toString('latin1', sector, sector + 8) !== 'EFI PART') continue;
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
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) {
    const entries = [0, 1, 2, 3].map((i) => ({ type: head[446 + 16 * i + 4]!, start: head.readUInt32LE(446 + 16 * i + 8), status: head[446 + 16 * i]! }));
    const valid = entries.every((e) => e.status === 0 || e.status === 0x80) && entries.some((e) => e.type !== 0 && e.start > 0);
    if (valid) {
      if (entries.some((e) => e.type === 0xee)) return gpt(head) ?? { kind: 'none', description: 'a protective MBR without a GPT header' };
      const i = entries.findIndex((e) => e.type === 0x83 && e.start > 0);
      if (i >= 0) return { kind: 'partition', offset: entries[i]!.start * 512, description: `partition ${i + 1} of an MBR disk, at byte ${entries[i]!.start * 512}` };
      return { kind: 'none', description: 'an MBR disk without a Linux (type 83) primary partition' };
    }
  }
  return { kind: 'bare', offset: 0, description: 'the whole image (no partition table)' };
}

/** The filesystem type from its superblock: ext2/3/4 (the magic at 1080), XFS, or unknown. `sb`: 2 KiB from the filesystem's start. */
export function filesystemType(sb: Buffer): 'ext' | 'xfs' | undefined {
  if (sb.length >= 1082 && sb.readUInt16LE(1080) === 0xef53) return 'ext';
  if (sb.length >= 4 && sb.toString('latin1', 0, 4) === 'XFSB') return 'xfs';
  return undefined;
}
