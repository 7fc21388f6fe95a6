// CRC-32 (the gzip polynomial) of a concatenation from the CRCs of its parts, as zlib's crc32_combine() computes it:
// Node exposes zlib.crc32 but not crc32_combine, and the parallel gzip takes each chunk's CRC in its worker.

const POLY = 0xedb88320; // reflected x^32 + x^26 + ... + 1

/** a(x) * b(x) mod p(x), both reflected. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) mod p(x) for k = 0..31. */
const X2N: number[] = [];
{
  let p = 0x40000000; // x^1
  for (let k = 0; k < 32; k++) {
    X2N.push(p);
    p = multModP(p, p);
  }
}

/** x^(8 * bytes) mod p(x): the operator that shifts a CRC past `bytes` zero bytes. */
function shiftFor(bytes: number): number {
  let p = 0x80000000; // x^0
  let k = 3; // 8 = 2^3 bits a byte
  for (let n = bytes; n > 0; n = Math.floor(n / 2), k++) if (n % 2 === 1) p = multModP(X2N[k % 32]!, p);
  return p;
}

/** The CRC-32 of A followed by B, given crc(A), crc(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(shiftFor(lengthB), crcA >>> 0) ^ (crcB >>> 0)) >>> 0;
}
