import { execFileSync } from 'node:child_process';
import { closeSync, openSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { pseudoRandomChunks } from './images.js';

const MiB = 1 << 20;

/** A file of `size` zero bytes (a hole), replacing any file there. */
export function blankFile(path: string, size: number): void {
  writeFileSync(path, '');
  truncateSync(path, size);
}

/** Writes bytes at an offset of an existing file. */
export function writeAt(path: string, offset: number, data: Buffer): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, data, 0, data.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Writes deterministic pseudo-random bytes (the fixtures' `random LABEL N`) at an offset of a file. */
export function writeRandom(path: string, offset: number, length: number, label: string): void {
  const fd = openSync(path, 'r+');
  try {
    let at = offset;
    for (const chunk of pseudoRandomChunks(label, length)) at += writeSync(fd, chunk, 0, chunk.length, at);
  } finally {
    closeSync(fd);
  }
}

/**
 * A bare ext2 file system, the same bytes every run: fixed UUID and hash seed, and a fixed clock
 * (E2FSPROGS_FAKE_TIME). `sizeMiB` of which the file system is all.
 */
export function makeExt2Image(path: string, sizeMiB: number): void {
  blankFile(path, sizeMiB * MiB);
  execFileSync('mke2fs', ['-F', '-q', '-t', 'ext2', '-U', '6d1f5b0e-2c3a-4b5c-9d8e-0f1a2b3c4d5e', '-E', 'hash_seed=0e1d2c3b-4a59-4867-8576-a4b3c2d1e0f9', path],
    { env: { ...process.env, E2FSPROGS_FAKE_TIME: '1700000000' }, stdio: 'pipe' });
}

/**
 * A disk with an MBR partition table (sfdisk: one bootable Linux partition at 1 MiB) and, unless `bootCode` is
 * false, a non-zero boot code area in sector 0 (440 deterministic bytes, as a boot loader puts there).
 * `dataMiB` of pseudo-random data inside the partition make the bundle as large as wanted.
 */
export function makeMbrDiskImage(path: string, sizeMiB: number, o: { bootCode?: boolean; dataMiB?: number } = {}): void {
  blankFile(path, sizeMiB * MiB);
  execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', path], { input: 'label: dos\nunit: sectors\n\nstart=2048, type=83, bootable\n', stdio: ['pipe', 'pipe', 'pipe'] });
  if (o.bootCode !== false) writeRandom(path, 0, 440, 'boot code');
  if (o.dataMiB) writeRandom(path, MiB, o.dataMiB * MiB, 'partition data');
}
