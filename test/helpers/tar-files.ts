import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, openSync, truncateSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { pseudoRandomChunks } from './images.js';

export interface TestFile {
  name: string;
  size: number;
  /** Pseudo-random data (no all-zero 4 KiB block) at these offsets; the rest is a hole (sparse) or zeros. */
  data: { offset: number; length: number }[];
  sparse?: boolean;
  mode?: number;
  mtime?: number;
}

/** Writes a test file: sparse ones are truncated first so unwritten ranges stay holes, dense ones get explicit zeros. */
export function writeTestFile(dir: string, f: TestFile): string {
  const path = join(dir, f.name);
  const fd = openSync(path, 'w');
  try {
    if (!f.sparse && f.size > 0) {
      const zero = Buffer.alloc(Math.min(f.size, 1 << 20));
      for (let pos = 0; pos < f.size; pos += zero.length) writeSync(fd, zero, 0, Math.min(zero.length, f.size - pos), pos);
    }
    f.data.forEach((r, i) => {
      let pos = r.offset;
      for (const buf of pseudoRandomChunks(`${f.name}/${i}`, r.length)) {
        writeSync(fd, buf, 0, buf.length, pos);
        pos += buf.length;
      }
    });
  } finally {
    closeSync(fd);
  }
  truncateSync(path, f.size);
  chmodSync(path, f.mode ?? 0o644);
  utimesSync(path, f.mtime ?? 1262304000, f.mtime ?? 1262304000);
  return path;
}

/** GNU tar's archive of one file exactly as ec2-bundle-image runs it. */
export function gnuTarOf(dir: string, name: string): Buffer {
  return execFileSync('tar', ['-c', '-h', '-S', '--owner', '0', '--group', '0', '--format=gnu', '-f', '-', '-C', dir, name], { maxBuffer: 1 << 30 });
}
