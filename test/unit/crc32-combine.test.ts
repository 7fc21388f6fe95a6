import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { crc32Combine } from '../../src/format/crc32-combine.js';

/** Deterministic bytes: SHA-256 blocks of a counter. */
function bytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; off += 32, i++) createHash('sha256').update(String(i)).digest().copy(out, off);
  return out;
}

describe('crc32Combine', () => {
  const data = bytes(3 * 1024 * 1024 + 77);

  it("equals zlib's CRC-32 of the whole for any cut, empty parts included", () => {
    for (const cut of [0, 1, 3, 31, 32, 4096, 65_535, 1 << 20, data.length - 1, data.length]) {
      expect(crc32Combine(crc32(data.subarray(0, cut)), crc32(data.subarray(cut)), data.length - cut), `cut at ${cut}`).toBe(crc32(data));
    }
  });

  it('folds many chunks in order, as the parallel gzip does', () => {
    let crc = 0;
    for (let off = 0; off < data.length; off += 1 << 20) {
      const chunk = data.subarray(off, off + (1 << 20));
      crc = crc32Combine(crc, crc32(chunk), chunk.length);
    }
    expect(crc).toBe(crc32(data));
  });

  it('handles a second part longer than 4 GiB', () => {
    // crc(A ‖ Z) with Z = 2^32 + 5 zero bytes: crc(Z) folded from 1 MiB pieces, then combined with crc(A) in one step,
    // against zlib's CRC-32 of 'abc' and then the zeros, computed once outside (feeding zlib 4 GiB takes seconds):
    //   python3 -c 'import zlib; c=zlib.crc32(b"abc"); [c:=zlib.crc32(bytes(1<<20),c) for _ in range(4096)]; print(zlib.crc32(bytes(5),c))'
    const ZLIB_CRC_OF_ABC_AND_ZEROS = 2239852791;
    const a = crc32(Buffer.from('abc'));
    const zeros = Buffer.alloc(1 << 20);
    let zerosCrc = 0;
    const pieceCrc = crc32(zeros);
    for (let i = 0; i < 4096; i++) zerosCrc = crc32Combine(zerosCrc, pieceCrc, zeros.length);
    zerosCrc = crc32Combine(zerosCrc, crc32(Buffer.alloc(5)), 5);
    expect(crc32Combine(a, zerosCrc, 2 ** 32 + 5)).toBe(ZLIB_CRC_OF_ABC_AND_ZEROS);
  });
});
