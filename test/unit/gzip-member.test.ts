import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { GzipMember, MAX_HEADER } from '../../src/stream/gzip-member.js';
import { pseudoRandomChunks, textChunks } from '../helpers/images.js';

const KiB = 1024;
/** Piece sizes: the first n bytes (a header) one at a time. */
const byteByByte = (n: number): number[] => Array<number>(n).fill(1);
const data = Buffer.concat([...textChunks('member', 300 * KiB), ...pseudoRandomChunks('member', 100 * KiB), Buffer.alloc(200 * KiB)]);

/** Runs `gz` through GzipMember in pieces of the given sizes (cycled); what came out, or the explained failure. */
async function inflate(gz: Buffer, sizes: number[] = [1 << 20]): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < gz.length; i++) pieces.push(gz.subarray(at, (at += sizes[i % sizes.length]!)));
  const member = new GzipMember();
  const out: Buffer[] = [];
  const sink = new Writable({ write: (c: Buffer, _e, cb) => { out.push(c); cb(); } });
  await pipeline(Readable.from(pieces), ...member.stages, sink).catch((err: Error) => { throw member.explain(err); });
  const all = Buffer.concat(out);
  member.check(all.length);
  return all;
}

/** A gzip member with the given header flags' fields, around raw deflate data. */
function member(o: { extra?: Buffer; name?: string; comment?: string; headerCrc?: boolean; body?: Buffer; isize?: number } = {}): Buffer {
  const body = o.body ?? data;
  const flags = (o.headerCrc ? 2 : 0) | (o.extra ? 4 : 0) | (o.name !== undefined ? 8 : 0) | (o.comment !== undefined ? 16 : 0);
  const parts = [Buffer.from([0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3])];
  if (o.extra) parts.push(Buffer.from([o.extra.length & 0xff, o.extra.length >> 8]), o.extra);
  if (o.name !== undefined) parts.push(Buffer.from(`${o.name}\0`, 'latin1'));
  if (o.comment !== undefined) parts.push(Buffer.from(`${o.comment}\0`, 'latin1'));
  if (o.headerCrc) {
    const h = Buffer.concat(parts);
    parts.push(Buffer.from([crc32(h) & 0xff, (crc32(h) >> 8) & 0xff]));
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(body), 0);
  trailer.writeUInt32LE(o.isize ?? body.length, 4);
  return Buffer.concat([...parts, deflateRawSync(body), trailer]);
}

describe('GzipMember', () => {
  it('inflates GNU gzip output (with the file name in its header) and Node gzip output, in pieces of any size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gzip-member-'));
    try {
      writeFileSync(join(dir, 'image.tar'), data);
      const gnu = spawnSync('gzip', ['-9', '-N', '-c', join(dir, 'image.tar')]);
      expect(gnu.status).toBe(0);
      expect(gnu.stdout[3]! & 8).toBe(8); // FNAME
      for (const gz of [gnu.stdout, gzipSync(data, { level: 6 })]) {
        for (const sizes of [[1 << 20], [...byteByByte(12), 4096], [3, 7, 5000], [9, 1 << 16]]) expect((await inflate(gz, sizes)).equals(data)).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads every optional header field, as gunzip does', async () => {
    const gz = member({ extra: Buffer.from('AB\x04\0abcd', 'latin1'), name: 'image.tar', comment: 'a comment', headerCrc: true });
    const oracle = spawnSync('gunzip', ['-c'], { input: gz, maxBuffer: 64 << 20 });
    expect(oracle.status).toBe(0);
    expect(oracle.stdout.equals(data)).toBe(true);
    for (const sizes of [[1 << 20], [...byteByByte(40), 4096], [11, 13, 3000]]) expect((await inflate(gz, sizes)).equals(data)).toBe(true);
  });

  it('refuses what is not one valid gzip member, naming what is wrong', async () => {
    const good = member({ name: 'x', headerCrc: true });
    const cases: [string, Buffer, RegExp][] = [
      ['another magic', Buffer.concat([Buffer.from([0x1f, 0x8c]), good.subarray(2)]), /incorrect header check/],
      ['another method', Buffer.concat([good.subarray(0, 2), Buffer.from([7]), good.subarray(3)]), /unknown compression method/],
      ['reserved flags', Buffer.concat([good.subarray(0, 3), Buffer.from([good[3]! | 0x20]), good.subarray(4)]), /unknown header flags/],
      ['a wrong header CRC', Buffer.concat([good.subarray(0, 13), Buffer.from([good[13]! ^ 1]), good.subarray(14)]), /header crc mismatch/],
      ['nothing', Buffer.alloc(0), /no gzip data/],
      ['a cut header', good.subarray(0, 11), /truncated gzip header/],
      ['a cut trailer', good.subarray(0, good.length - 3), /unexpected end of file|without its trailer/],
      ['cut deflate data', Buffer.concat([good.subarray(0, good.length - 100), good.subarray(good.length - 8)]), /unexpected end of file|invalid/],
      ['a second member', Buffer.concat([good, gzipSync(Buffer.from('more'))]), /data follows the gzip member/],
      ['trailing bytes', Buffer.concat([good, Buffer.from('garbage!')]), /data follows the gzip member/],
      ['trailing zeros', Buffer.concat([good, Buffer.alloc(512)]), /data follows the gzip member/],
      ['a wrong length in the trailer', member({ isize: data.length + 1 }), /trailer gives a length of/],
      ['a name that never ends', Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3]), Buffer.alloc(MAX_HEADER + 10, 0x41)]), /header longer than/],
    ];
    for (const [what, gz, message] of cases) {
      for (const sizes of [[1 << 20], [7, 4093]]) {
        await expect(inflate(gz, sizes), `${what} in ${sizes[0]}-byte pieces`).rejects.toThrow(message);
      }
    }
  });

  it('does not read the CRC-32 (the caller checks a stronger digest of the same bytes) but does check the length', async () => {
    const gz = member();
    gz.writeUInt32LE((gz.readUInt32LE(gz.length - 8) ^ 1) >>> 0, gz.length - 8);
    expect((await inflate(gz)).equals(data)).toBe(true);
  });
});
