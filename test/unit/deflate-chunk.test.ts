import { describe, expect, it } from 'vitest';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { deflateChunk as deflatePieces, estimateEntropy, looksIncompressible, SEGMENT, STORE_ENTROPY } from '../../src/stream/deflate-chunk.js';
import { pseudoRandomChunks, textChunks } from '../helpers/images.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const random = (label: string, n: number) => Buffer.concat([...pseudoRandomChunks(label, n)]);
const text = (label: string, n: number) => Buffer.concat([...textChunks(label, n)]);
const storedSize = (n: number) => n + 5 * Math.ceil(n / 65535);
const deflateChunk = (data: Buffer, dictionary: Buffer | undefined, level: number) => Buffer.concat(deflatePieces(data, dictionary, level));

/** Inflates a chunk's raw output (byte-aligned, not final) given the 32 KiB before it. */
function inflateChunk(out: Buffer, dictionary?: Buffer): Buffer {
  return inflateRawSync(out, { finishFlush: constants.Z_SYNC_FLUSH, ...(dictionary ? { dictionary } : {}) });
}

/** The stored block header for n bytes, BFINAL 0. */
const storedHeader = (n: number) => Buffer.from([0, n & 0xff, n >> 8, ~n & 0xff, (~n >> 8) & 0xff]);

describe('estimateEntropy', () => {
  it('tells pseudo-random data from zeros, text, small-alphabet and record-structured data', () => {
    expect(estimateEntropy(random('est', SEGMENT))).toBeGreaterThan(7.99);
    expect(estimateEntropy(random('est', SEGMENT))).toBeLessThan(8.01);
    expect(estimateEntropy(Buffer.alloc(SEGMENT))).toBe(0);
    expect(estimateEntropy(text('est', SEGMENT))).toBeLessThan(6);
    const alphabet64 = Buffer.from(random('est64', SEGMENT).map((b) => b & 63));
    expect(estimateEntropy(alphabet64)).toBeGreaterThan(5.9);
    expect(estimateEntropy(alphabet64)).toBeLessThan(6.1);
    // Little-endian 32-bit counters with random low bytes: a stride of 4 would see only the low bytes.
    const records = Buffer.alloc(SEGMENT);
    const rnd = random('records', SEGMENT / 4);
    for (let i = 0; i < SEGMENT / 4; i++) records.writeUInt32LE(rnd[i]! | ((i & 0xff) << 8), i * 4);
    expect(estimateEntropy(records)).toBeLessThan(STORE_ENTROPY - 1);
    // A segment a sixteenth zeros (one 4 KiB block in an ext4 image) is still worth deflating.
    const mostlyRandom = Buffer.concat([random('mostly', SEGMENT - 4 * KiB), Buffer.alloc(4 * KiB)]);
    expect(estimateEntropy(mostlyRandom)).toBeLessThan(STORE_ENTROPY);
  });
});

describe('looksIncompressible', () => {
  it('decides as the full estimate does, near the threshold too, where the coarse sample defers to it', () => {
    // Random data with a growing run of zeros: estimates from 8 bits down through STORE_ENTROPY.
    const cases = Array.from({ length: 25 }, (_, k) => Buffer.concat([random(`near${k}`, SEGMENT - k * 128), Buffer.alloc(k * 128)]));
    const full = cases.map((seg) => estimateEntropy(seg) >= STORE_ENTROPY);
    expect(full).toContain(true);
    expect(full).toContain(false);
    expect(cases.map((seg) => looksIncompressible(seg))).toEqual(full);
    for (const seg of [random('short', 3000), text('short', SEGMENT), Buffer.alloc(SEGMENT)]) expect(looksIncompressible(seg)).toBe(estimateEntropy(seg) >= STORE_ENTROPY);
  });
});

describe('deflateChunk', () => {
  it('level 0: stored blocks only, the input byte for byte behind 5-byte headers', () => {
    const input = text('l0', MiB + 17);
    const out = deflateChunk(input, undefined, 0);
    expect(out.length).toBe(storedSize(input.length));
    expect(out.subarray(0, 5)).toEqual(storedHeader(65535));
    expect(out.subarray(5, 5 + 65535).equals(input.subarray(0, 65535))).toBe(true);
    expect(inflateChunk(out).equals(input)).toBe(true);
  });

  it('pseudo-random data is stored at every level: within 0.01% of its size', () => {
    const input = random('rand', MiB);
    for (const level of [1, 6, 9]) {
      const out = deflateChunk(input, random('dict', 32 * KiB), level);
      expect(out.length).toBe(storedSize(input.length));
      expect(out.length / input.length).toBeLessThan(1.0001);
      expect(inflateChunk(out, random('dict', 32 * KiB)).equals(input)).toBe(true);
    }
  });

  it('mixes stored and deflated segments in one byte-aligned stream', () => {
    const rnd = random('mix', 3 * SEGMENT);
    const txt = text('mix', 2 * SEGMENT);
    // random | text | random random | text
    const input = Buffer.concat([rnd.subarray(0, SEGMENT), txt.subarray(0, SEGMENT), rnd.subarray(SEGMENT), txt.subarray(SEGMENT)]);
    const dictionary = text('before', 32 * KiB);
    const out = deflateChunk(input, dictionary, 6);
    // The first segment is stored as-is, split at 65535 bytes.
    expect(out.subarray(0, 5)).toEqual(storedHeader(65535));
    expect(out.subarray(5, 5 + 65535).equals(input.subarray(0, 65535))).toBe(true);
    expect(out.subarray(65540, 65545)).toEqual(storedHeader(1));
    // The text segments are deflated: the whole is well under the random part plus headers.
    expect(out.length).toBeLessThan(storedSize(3 * SEGMENT) + SEGMENT / 2);
    expect(inflateChunk(out, dictionary).equals(input)).toBe(true);
    // A deflated run after a stored one has the stored bytes as its window: a repeat of them costs next to nothing.
    const second = Buffer.concat([rnd.subarray(SEGMENT - 16 * KiB, SEGMENT), txt.subarray(0, SEGMENT - 16 * KiB)]);
    const both = Buffer.concat([rnd.subarray(0, SEGMENT), second]);
    const linked = deflateChunk(both, undefined, 6);
    expect(inflateChunk(linked).equals(both)).toBe(true);
    const alone = deflateRawSync(second, { level: 6, finishFlush: constants.Z_SYNC_FLUSH }).length;
    expect(alone).toBeGreaterThan(16 * KiB);
    expect(linked.length - storedSize(SEGMENT)).toBeLessThan(alone - 15 * KiB);
  });

  it('depends only on data, dictionary and level; zero chunks (memoized) equal a fresh deflate', () => {
    const zeros = Buffer.alloc(MiB);
    const zdict = Buffer.alloc(32 * KiB);
    const direct = deflateRawSync(zeros, { level: 6, dictionary: zdict, finishFlush: constants.Z_SYNC_FLUSH });
    const [first, ...more] = deflatePieces(zeros, zdict, 6);
    const [second] = deflatePieces(zeros, zdict, 6);
    expect(more).toEqual([]);
    expect(first!.equals(direct)).toBe(true);
    expect(second!.equals(direct)).toBe(true);
    expect(first!.buffer).not.toBe(second!.buffer); // each result is handed over (transferred) on its own
    expect(deflateChunk(zeros, undefined, 6).equals(deflateRawSync(zeros, { level: 6, finishFlush: constants.Z_SYNC_FLUSH }))).toBe(true);
    const txt = text('det', MiB);
    expect(deflateChunk(txt, zdict, 9).equals(deflateChunk(Buffer.from(txt), Buffer.from(zdict), 9))).toBe(true);
  });
});
