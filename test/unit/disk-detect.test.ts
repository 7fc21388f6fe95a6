// Virtualization detection from an image's first sectors, and reading those sectors from a tar stream's start.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DETECT_BYTES, detectVirtualization } from '../../src/format/disk-detect.js';
import { firstMemberHead } from '../../src/format/tar-member-head.js';
import { TarFormatError } from '../../src/format/tar-header.js';
import { patchBootSector } from '../../src/volume/bootloader.js';
import { planLayout, writePartitionTable } from '../../src/volume/disk-layout.js';
import { scratch } from '../helpers/bundles.js';
import { blankFile, makeExt2Image, makeMbrDiskImage, writeAt, writeRandom } from '../helpers/disk-images.js';
import { gnuTarOf, writeTestFile } from '../helpers/tar-files.js';

const work = scratch('disk-detect');
afterAll(work.cleanup);
const MiB = 1 << 20;
const GRUB2_BOOT_IMG = '/usr/lib/grub/i386-pc/boot.img';

const headOf = (path: string) => readFileSync(path).subarray(0, DETECT_BYTES);

describe('detectVirtualization', () => {
  it('an MBR disk with boot code (sfdisk, then 440 bytes of code) is hvm; without boot code it is not decided', () => {
    const p = join(work.dir, 'mbr.img');
    makeMbrDiskImage(p, 4);
    expect(detectVirtualization(headOf(p))).toEqual({ type: 'hvm', reason: 'an MBR disk with boot code' });
    makeMbrDiskImage(p, 4, { bootCode: false });
    expect(detectVirtualization(headOf(p))).toEqual({ type: undefined, reason: 'an MBR disk without boot code in its first sector' });
  });

  it('a bare ext2 file system (mke2fs) is paravirtual, even with boot code and 0x55AA in its first sector', () => {
    const p = join(work.dir, 'ext2.img');
    makeExt2Image(p, 4);
    expect(detectVirtualization(headOf(p))).toEqual({ type: 'paravirtual', reason: 'a bare ext2/3/4 file system (no partition table)' });
    // A boot loader installed into the file system's boot sector leaves no partition table: still a bare file system.
    writeRandom(p, 0, 440, 'pbr');
    writeAt(p, 510, Buffer.from([0x55, 0xaa]));
    expect(headOf(p)[510]).toBe(0x55);
    expect(detectVirtualization(headOf(p)).type).toBe('paravirtual');
  });

  it.skipIf(!existsSync(GRUB2_BOOT_IMG))('the disks ec2-bundle-vol -P mbr and -P gpt lay out, with GRUB 2\'s boot sector, are hvm', async () => {
    for (const scheme of ['mbr', 'gpt'] as const) {
      const p = join(work.dir, `${scheme}-vol.img`);
      blankFile(p, 8 * MiB);
      await writePartitionTable(p, planLayout(scheme, 8));
      // As bundle-vol installs it: the boot code only, the table and signature stay.
      writeAt(p, 0, patchBootSector(readFileSync(GRUB2_BOOT_IMG), 2048));
      expect(detectVirtualization(headOf(p)).type).toBe('hvm');
    }
    // A GPT disk counts as hvm with or without BIOS boot code (UEFI boots it).
    const g = join(work.dir, 'gpt-plain.img');
    blankFile(g, 8 * MiB);
    await writePartitionTable(g, planLayout('gpt', 8));
    expect(detectVirtualization(headOf(g))).toEqual({ type: 'hvm', reason: 'a GPT disk (protective MBR and GPT header)' });
  });

  it('zeros, short buffers, an XFS superblock and random bytes', () => {
    expect(detectVirtualization(Buffer.alloc(DETECT_BYTES)).type).toBeUndefined();
    expect(detectVirtualization(Buffer.alloc(0)).type).toBeUndefined();
    expect(detectVirtualization(Buffer.alloc(100, 1)).type).toBeUndefined();
    const xfs = Buffer.alloc(DETECT_BYTES);
    xfs.write('XFSB', 0, 'latin1');
    expect(detectVirtualization(xfs)).toEqual({ type: 'paravirtual', reason: 'a bare XFS file system (no partition table)' });
    // A signature over a table whose entries are nonsense (boot flag 0x12) is not a partition table.
    const junk = Buffer.alloc(DETECT_BYTES, 0x12);
    junk[510] = 0x55;
    junk[511] = 0xaa;
    expect(detectVirtualization(junk).type).toBeUndefined();
  });
});

describe('firstMemberHead reads an image\'s first bytes from the start of its tar stream', () => {
  const KiB = 1024;
  const cases = [
    { name: 'plain.img', size: 64 * KiB, data: [{ offset: 0, length: 64 * KiB }] },
    { name: `${'long-name-'.repeat(12)}.img`, size: 20 * KiB, data: [{ offset: 0, length: 20 * KiB }] },
    { name: 'tiny.img', size: 700, data: [{ offset: 0, length: 700 }] },
    { name: 'sparse-start.img', size: 4 * MiB, data: [{ offset: 0, length: 4 * KiB }, { offset: MiB, length: 8 * KiB }], sparse: true },
    { name: 'sparse-late.img', size: 4 * MiB, data: [{ offset: 4 * KiB, length: 4 * KiB }, { offset: 2 * MiB, length: 4 * KiB }], sparse: true },
    { name: 'sparse-many.img', size: 4 * MiB, data: Array.from({ length: 30 }, (_, i) => ({ offset: i * 64 * KiB, length: 4 * KiB })), sparse: true },
  ];
  for (const f of cases) {
    it(`${f.name.slice(0, 30)}: GNU tar (gnu format, and pax with sparse 1.0) gives the file's first ${DETECT_BYTES} bytes`, () => {
      const path = writeTestFile(work.dir, f);
      const want = readFileSync(path).subarray(0, DETECT_BYTES);
      const gnu = gnuTarOf(work.dir, f.name);
      expect(firstMemberHead(gnu, DETECT_BYTES)).toEqual({ name: f.name, size: f.size, head: want });
      const pax = execFileSync('tar', ['-c', '-S', '--sparse-version=1.0', '--format=pax', '-f', '-', '-C', work.dir, f.name], { maxBuffer: 1 << 30 });
      expect(firstMemberHead(pax, DETECT_BYTES)?.head).toEqual(want);
      // A prefix too short for the head gives undefined, never a guess.
      const headers = gnu.length - f.size; // at least the header blocks
      expect(firstMemberHead(gnu.subarray(0, Math.min(512, headers)), DETECT_BYTES)).toBeUndefined();
    });
  }

  it('refuses what is not a tar stream, and an archive whose first member is not a file', () => {
    expect(() => firstMemberHead(Buffer.alloc(1024, 7), DETECT_BYTES)).toThrow(TarFormatError);
    expect(() => firstMemberHead(Buffer.alloc(1024), DETECT_BYTES)).toThrow(/holds no file/);
    execFileSync('ln', ['-sf', 'plain.img', join(work.dir, 'link.img')]);
    const link = execFileSync('tar', ['-c', '--format=gnu', '-f', '-', '-C', work.dir, 'link.img']);
    expect(() => firstMemberHead(link, DETECT_BYTES)).toThrow(/type '2'/);
  });
});
