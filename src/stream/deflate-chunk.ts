// One chunk of the parallel gzip stream (gzip-parallel.ts): raw deflate blocks that end byte-aligned and not final,
// so chunks concatenate into one deflate stream. Segments that deflate would not shrink (compressed files, encrypted
// data) go out as stored blocks: deflating them costs ten times a copy and gains nothing.
import { constants, deflateRawSync } from 'node:zlib';

/** The unit of the stored-or-deflated decision. */
export const SEGMENT = 64 * 1024;
const WINDOW = 32 * 1024;
const MAX_STORED = 0xffff;
/**
 * A segment whose estimated order-0 entropy is at least this many bits per byte is stored. Measured on the
 * benchmark's Debian ext4 image: 12% of its data is stored and the output grows by 0.03% against deflating
 * everything at level 6; pseudo-random data estimates at 8.000 ± 0.002.
 */
export const STORE_ENTROPY = 7.95;
/** Every 5th byte: a stride that divides no power of two, so 2-, 4- and 8-byte records are sampled evenly. */
const STRIDE = 5;
/**
 * A first sample four times sparser (odd too) settles the whole segments far from STORE_ENTROPY, which is nearly all
 * of them (its spread on random data is ~0.005 bits). On the benchmark's images the estimates then cost 40% as much,
 * and 1 of the OS image's 32768 segments is decided otherwise.
 */
const COARSE_STRIDE = 19;
const COARSE_MARGIN = 0.04;

// Four tables, counted in turn: consecutive increments of one table stall on each other when bytes repeat.
const counts = new Uint32Array(4 * 256);

/** Order-0 entropy of every `stride`th byte of `seg` in bits per byte, with the Miller–Madow correction for the sample size. */
export function estimateEntropy(seg: Uint8Array, stride = STRIDE): number {
  counts.fill(0);
  const len = seg.length;
  let i = 0;
  for (; i + 3 * stride < len; i += 4 * stride) {
    counts[seg[i]!]++;
    counts[256 + seg[i + stride]!]++;
    counts[512 + seg[i + 2 * stride]!]++;
    counts[768 + seg[i + 3 * stride]!]++;
  }
  for (; i < len; i += stride) counts[seg[i]!]++;
  const n = Math.ceil(len / stride);
  if (n === 0) return 0;
  let sum = 0;
  let used = 0;
  for (let b = 0; b < 256; b++) {
    const c = counts[b]! + counts[256 + b]! + counts[512 + b]! + counts[768 + b]!;
    if (c > 0) {
      sum += c * Math.log2(c);
      used++;
    }
  }
  return Math.log2(n) - sum / n + (used - 1) / (2 * n * Math.LN2);
}

/** Whether a segment goes out stored: its estimated entropy reaches STORE_ENTROPY. */
export function looksIncompressible(seg: Uint8Array): boolean {
  if (seg.length === SEGMENT) {
    const coarse = estimateEntropy(seg, COARSE_STRIDE);
    if (Math.abs(coarse - STORE_ENTROPY) >= COARSE_MARGIN) return coarse > STORE_ENTROPY;
  }
  return estimateEntropy(seg) >= STORE_ENTROPY;
}

/** The 32 KiB of input before `from`: the dictionary that makes a deflate run continue the stream's window. */
function windowBefore(data: Buffer, dictionary: Buffer | undefined, from: number): Buffer | undefined {
  if (from >= WINDOW) return data.subarray(from - WINDOW, from);
  const head = data.subarray(0, from);
  if (!dictionary || dictionary.length === 0) return from > 0 ? head : undefined;
  return Buffer.concat([dictionary.subarray(Math.max(0, dictionary.length - (WINDOW - from))), head]);
}

function deflateRun(data: Buffer, dictionary: Buffer | undefined, from: number, to: number, level: number): Buffer {
  const input = data.subarray(from, to);
  const dict = windowBefore(data, dictionary, from);
  return deflateRawSync(input, {
    level,
    // Sync flush: the output ends byte-aligned and not final, so whatever follows can start a block directly.
    finishFlush: constants.Z_SYNC_FLUSH,
    // Room for the worst case (zlib's own stored blocks) in ONE output buffer.
    chunkSize: input.length + (input.length >> 8) + 1024,
    ...(dict ? { dictionary: dict } : {}),
  });
}

/** Bytes that `len` bytes take as stored blocks. */
function storedLength(len: number): number {
  return len + 5 * Math.max(1, Math.ceil(len / MAX_STORED));
}

/** Writes `src` as non-final stored blocks at out[at]; returns the offset after them. */
function writeStored(out: Buffer, at: number, src: Buffer): number {
  let off = 0;
  do {
    const n = Math.min(MAX_STORED, src.length - off);
    out[at] = 0x00; // BFINAL 0, BTYPE 00 (stored), then padding to the byte boundary we are already on
    out.writeUInt16LE(n, at + 1);
    out.writeUInt16LE(~n & 0xffff, at + 3);
    src.copy(out, at + 5, off, off + n);
    at += 5 + n;
    off += n;
  } while (off < src.length);
  return at;
}

const zeroChunks = new Map<string, Buffer>();
const ZEROS = Buffer.alloc(SEGMENT);

export function allZero(b: Buffer): boolean {
  for (let off = 0; off < b.length; off += SEGMENT) {
    const n = Math.min(SEGMENT, b.length - off);
    if (!b.subarray(off, off + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}

/**
 * Raw deflate of one chunk whose preceding input (up to 32 KiB) is `dictionary`, as pieces to be written in order:
 * deflated at `level` where it compresses, stored blocks where a segment looks incompressible, everything stored at
 * level 0. Each piece owns its memory (the stored ones share a buffer), so a worker can hand them all over without
 * leaving garbage behind. The output depends only on (data, dictionary, level), so it is the same whichever worker
 * makes it.
 */
export function deflateChunk(data: Buffer, dictionary: Buffer | undefined, level: number): Buffer[] {
  const n = data.length;
  if (n === 0) return [];
  // Runs of written zeros (unused space of a non-sparse disk image) are common: their output is memoized.
  const zeroKey = level > 0 && n >= SEGMENT && allZero(data) && (!dictionary || (dictionary.length === WINDOW && allZero(dictionary)))
    ? `${level}:${n}:${dictionary ? 1 : 0}` : undefined;
  const known = zeroKey && zeroChunks.get(zeroKey);
  if (known) return [Buffer.from(known)];

  const segments = Math.ceil(n / SEGMENT);
  const stored: boolean[] = [];
  for (let s = 0; s < segments; s++) stored.push(level === 0 || looksIncompressible(data.subarray(s * SEGMENT, (s + 1) * SEGMENT)));

  // Runs of segments of one kind; the stored runs share one buffer.
  const runs: Array<{ from: number; to: number; stored: boolean }> = [];
  for (let s = 0; s < segments;) {
    let e = s + 1;
    while (e < segments && stored[e] === stored[s]) e++;
    runs.push({ from: s * SEGMENT, to: Math.min(n, e * SEGMENT), stored: stored[s]! });
    s = e;
  }
  const storedBytes = runs.reduce((a, r) => a + (r.stored ? storedLength(r.to - r.from) : 0), 0);
  const storedBuf = storedBytes > 0 ? Buffer.allocUnsafeSlow(storedBytes) : undefined;
  let at = 0;
  const pieces = runs.map((r) => {
    if (!r.stored) return deflateRun(data, dictionary, r.from, r.to, level);
    const start = at;
    at = writeStored(storedBuf!, at, data.subarray(r.from, r.to));
    return storedBuf!.subarray(start, at);
  });
  if (zeroKey) zeroChunks.set(zeroKey, Buffer.from(pieces[0]!));
  return pieces;
}
