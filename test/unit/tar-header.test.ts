import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeHeader, decodeNumber, decodeSparseExtension, encodeMemberHeaders, encodeNumber, headerChecksums, readPax,
  Sparse10MapParser, trailerLength, blockPad, shownName, type PaxOverrides,
} from '../../src/format/tar-header.js';

const GiB = 1024 ** 3;

describe('numbers', () => {
  it('octal with len-1 digits and a NUL', () => {
    const b = Buffer.alloc(12);
    encodeNumber(b, 0, 12, 1262304000);
    expect(b.toString('latin1')).toBe('11317235400\0');
    encodeNumber(b, 0, 8, 0o644);
    expect(b.subarray(0, 8).toString('latin1')).toBe('0000644\0');
    expect(decodeNumber(Buffer.from('11317235400\0'), 0, 12)).toBe(1262304000);
    expect(decodeNumber(Buffer.from('  644 \0\0'), 0, 8)).toBe(0o644); // old tars pad with spaces
    expect(decodeNumber(Buffer.alloc(12), 0, 12)).toBe(0);
  });

  it('the largest octal size is 8 GiB - 1; from 8 GiB on, GNU base-256', () => {
    const b = Buffer.alloc(12);
    encodeNumber(b, 0, 12, 8 * GiB - 1);
    expect(b.toString('latin1')).toBe('77777777777\0');
    encodeNumber(b, 0, 12, 8 * GiB);
    expect([...b]).toEqual([0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0]); // 2^33
    expect(decodeNumber(b, 0, 12)).toBe(8 * GiB);
    encodeNumber(b, 0, 12, 9 * GiB + 12345);
    expect(decodeNumber(b, 0, 12)).toBe(9 * GiB + 12345);
    encodeNumber(b, 0, 12, -1); // a pre-1970 mtime
    expect([...b]).toEqual(Array(12).fill(0xff));
    expect(decodeNumber(b, 0, 12)).toBe(-1);
  });

  it('rejects garbage in an octal field', () => {
    expect(() => decodeNumber(Buffer.from('12x4\0'), 0, 5, 'size')).toThrow('tar header: size field is not an octal number');
  });
});

describe('member headers', () => {
  it('a plain member: the fields of the spec and a valid checksum', () => {
    const h = encodeMemberHeaders({ name: 'tiny.img', mode: 0o100644, mtime: 1262304000, size: 1048576 });
    expect(h.length).toBe(512);
    expect(h.toString('latin1', 0, 9)).toBe('tiny.img\0');
    expect(h.toString('latin1', 100, 136)).toBe('0000644\0' + '0000000\0' + '0000000\0' + '00004000000\0');
    expect(h.toString('latin1', 156, 157)).toBe('0');
    expect(h.toString('latin1', 257, 265)).toBe('ustar  \0');
    expect(h.toString('latin1', 265, 270)).toBe('root\0');
    expect(h.toString('latin1', 297, 302)).toBe('root\0');
    expect(h.subarray(329, 512).equals(Buffer.alloc(183))).toBe(true);
    expect(h.toString('latin1', 148, 156)).toBe(`${headerChecksums(h).unsigned.toString(8).padStart(6, '0')}\0 `);
    const d = decodeHeader(h)!;
    expect(d).toMatchObject({ name: 'tiny.img', mode: 0o644, size: 1048576, mtime: 1262304000, typeflag: '0', format: 'gnu' });
  });

  it('a size of 9 GiB is written in base-256 and read back', () => {
    const h = encodeMemberHeaders({ name: 'big.img', mode: 0o644, mtime: 0, size: 9 * GiB });
    expect(h[124]).toBe(0x80);
    expect(decodeHeader(h)!.size).toBe(9 * GiB);
  });

  it('exactly 100 bytes fit the name field; 101 need a ././@LongLink', () => {
    expect(encodeMemberHeaders({ name: 'a'.repeat(100), mode: 0o644, mtime: 0, size: 0 }).length).toBe(512);
    const h = encodeMemberHeaders({ name: 'b'.repeat(101), mode: 0o644, mtime: 0, size: 0 });
    expect(h.length).toBe(1536);
    expect(decodeHeader(h.subarray(0, 512))).toMatchObject({ name: '././@LongLink', typeflag: 'L', size: 102, mode: 0o644, mtime: 0 });
    expect(h.toString('latin1', 512, 614)).toBe('b'.repeat(101) + '\0');
    expect(decodeHeader(h.subarray(1024))!.name).toBe('b'.repeat(100));
  });

  it('a sparse member: 4 entries in the header, then 21-entry extension blocks', () => {
    const map = Array.from({ length: 30 }, (_, i) => ({ offset: i * 8192, length: i === 29 ? 0 : 4096 }));
    map[29].offset = 10 * GiB; // realsize, past 8 GiB
    const h = encodeMemberHeaders({ name: 's.img', mode: 0o644, mtime: 0, size: 29 * 4096, sparse: { realsize: 10 * GiB, map } });
    expect(h.length).toBe(512 * 3);
    const d = decodeHeader(h.subarray(0, 512))!;
    expect(d.typeflag).toBe('S');
    expect(d.sparse).toEqual({ map: map.slice(0, 4), isextended: true, realsize: 10 * GiB });
    expect(decodeSparseExtension(h.subarray(512, 1024))).toEqual({ map: map.slice(4, 25), isextended: true });
    expect(decodeSparseExtension(h.subarray(1024))).toEqual({ map: map.slice(25), isextended: false });
  });

  it('detects a corrupt header and an all-zero block', () => {
    const h = encodeMemberHeaders({ name: 'x', mode: 0o644, mtime: 0, size: 5 });
    expect(decodeHeader(Buffer.alloc(512))).toBeNull();
    h[200] = 1;
    expect(() => decodeHeader(h, 'tar header at byte 0')).toThrow('tar header at byte 0: header checksum mismatch');
  });

  it('pads and ends the archive like GNU tar', () => {
    expect(blockPad(0)).toBe(0);
    expect(blockPad(1)).toBe(511);
    expect(trailerLength(512 + 1048576)).toBe(1054720 - 512 - 1048576); // the tiny fixture
    expect(trailerLength(9216)).toBe(1024); // two zero blocks just fit the record
    expect(trailerLength(9216 + 512)).toBe(20480 - 9728); // they do not: a second record
  });

  it('GNU tar lists our headers (long name, 9 GiB realsize)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'amitools-hdr-'));
    const name = `${'n'.repeat(150)}.img`;
    const map = [{ offset: 0, length: 512 }, { offset: 9 * GiB, length: 0 }];
    const h = encodeMemberHeaders({ name, mode: 0o600, mtime: 1262304000, size: 512, sparse: { realsize: 9 * GiB, map } });
    const body = Buffer.concat([h, Buffer.alloc(512, 0x41)]);
    writeFileSync(join(dir, 'a.tar'), Buffer.concat([body, Buffer.alloc(trailerLength(body.length))]));
    const out = execFileSync('tar', ['-tvf', join(dir, 'a.tar')], { encoding: 'utf8' });
    expect(out).toMatch(new RegExp(`^-rw------- root/root\\s+${9 * GiB} 2010-01-01 \\d\\d:\\d\\d ${name}\\n$`));
    rmSync(dir, { recursive: true });
  });
});

describe('pax', () => {
  const rec = (k: string, v: string) => {
    const body = ` ${k}=${v}\n`;
    const n = Buffer.byteLength(body);
    let len = n + 1;
    while (String(len).length + n !== len) len++;
    return `${len}${body}`;
  };

  const pax = (text: string, global = false) => readPax(Buffer.from(text), 'pax header', { global, maxEntries: 100 });
  /** The overrides with the sparse map as plain regions, to compare. */
  const plain = (o: PaxOverrides) => (o.sparse?.map ? { ...o, sparse: { ...o.sparse, map: o.sparse.map.toArray() } } : o);

  it('parses records and applies path, size, mtime', () => {
    const data = rec('path', 'dir/ä.img') + rec('size', '9663676416') + rec('mtime', '1262304000.5') + rec('uid', '0');
    expect(pax(data)).toEqual({ path: 'dir/ä.img', size: 9663676416, mtime: 1262304000.5 });
  });

  it('GNU sparse 0.0, 0.1 and 1.0', () => {
    const v00 = rec('GNU.sparse.size', '100000') + rec('GNU.sparse.numblocks', '2') + rec('GNU.sparse.offset', '0') + rec('GNU.sparse.numbytes', '10') + rec('GNU.sparse.offset', '4096') + rec('GNU.sparse.numbytes', '20') + rec('GNU.sparse.name', 'a.img');
    expect(plain(pax(v00))).toEqual({ path: 'a.img', sparse: { realsize: 100000, map: [{ offset: 0, length: 10 }, { offset: 4096, length: 20 }] } });
    const v01 = rec('GNU.sparse.size', '100000') + rec('GNU.sparse.numblocks', '2') + rec('GNU.sparse.map', '0,10,4096,20') + rec('GNU.sparse.name', 'a.img');
    expect(plain(pax(v01))).toEqual({ path: 'a.img', sparse: { realsize: 100000, map: [{ offset: 0, length: 10 }, { offset: 4096, length: 20 }] } });
    expect(plain(pax(rec('GNU.sparse.size', '5') + rec('GNU.sparse.map', '')))).toEqual({ sparse: { realsize: 5, map: [] } });
    const v10 = rec('GNU.sparse.major', '1') + rec('GNU.sparse.minor', '0') + rec('GNU.sparse.name', 'a.img') + rec('GNU.sparse.realsize', '100000');
    expect(pax(v10)).toEqual({ path: 'a.img', sparse: { realsize: 100000, dataMap: true } });
    expect(() => pax(rec('GNU.sparse.major', '2'))).toThrow(/unsupported GNU sparse format 2/);
  });

  it('bounds what a header can make it hold', () => {
    // No more map entries than allowed, whichever way the map is written.
    const many = Array.from({ length: 101 }, (_, i) => `${i * 2},1`).join(',');
    expect(() => pax(rec('GNU.sparse.size', '1000') + rec('GNU.sparse.map', many))).toThrow('pax header: GNU sparse map: sparse map entry 100 is more than the member can hold');
    const pairs = Array.from({ length: 101 }, (_, i) => rec('GNU.sparse.offset', String(i * 2)) + rec('GNU.sparse.numbytes', '1')).join('');
    expect(() => pax(rec('GNU.sparse.size', '1000') + pairs)).toThrow(/sparse map entry 100 is more than the member can hold/);
    expect(() => pax(rec('GNU.sparse.numblocks', '101'))).toThrow(/GNU sparse map of 101 entries is more than a member can hold/);
    // Regions out of order, overlapping, or with something after the end entry.
    expect(() => pax(rec('GNU.sparse.size', '1000') + rec('GNU.sparse.map', '10,5,12,1'))).toThrow(/entry 1 at offset 12 is out of order or overlaps/);
    expect(() => pax(rec('GNU.sparse.size', '1000') + rec('GNU.sparse.map', '10,5,0,1'))).toThrow(/entry 1 at offset 0 is out of order/);
    expect(() => pax(rec('GNU.sparse.size', '1000') + rec('GNU.sparse.map', '10,0,20,1'))).toThrow(/entry 1 follows the zero-length entry/);
    expect(() => pax(rec('GNU.sparse.map', '1,2') + rec('GNU.sparse.map', '3,4'))).toThrow(/more than one GNU sparse map/);
    // Numbers too large to be exact, and sparse keys where they make no sense.
    expect(() => pax(rec('size', '99999999999999999'))).toThrow("pax header: bad value for size: '99999999999999999'");
    expect(() => pax(rec('GNU.sparse.map', '99999999999999999,1'))).toThrow(/malformed GNU.sparse.map/);
    expect(() => pax(rec('GNU.sparse.size', '5'), true)).toThrow('pax header: GNU sparse keys in a global pax header');
    expect(pax(rec('mtime', '7') + rec('path', 'x'), true)).toEqual({ mtime: 7, path: 'x' });
  });

  it('reads half a million records without recursion or keeping them', () => {
    const one = rec('comment', 'x');
    const data = Buffer.from(one.repeat(500_000) + rec('path', 'last.img'));
    expect(readPax(data, 'pax header', { maxEntries: 0 })).toEqual({ path: 'last.img' });
  });

  it('shows names with control characters escaped', () => {
    expect(shownName('a\x1b]0;owned\x07\nb\u202e.img')).toBe('a\\x1b]0;owned\\x07\\x0ab\\u202e.img');
    expect(shownName('x'.repeat(300))).toBe(`${'x'.repeat(200)}…`);
  });

  it('the GNU sparse 1.0 map at the start of the data, fed byte by byte', () => {
    const text = '3\n0\n10\n4096\n20\n100000\n0\n';
    const data = Buffer.concat([Buffer.from(text), Buffer.alloc(512 - text.length), Buffer.from('DATA')]);
    const p = new Sparse10MapParser('m', { maxEntries: 3 });
    let used = 0;
    for (let i = 0; i < data.length; i++) {
      const r = p.feed(data.subarray(i, i + 1));
      used += r.used;
      if (r.complete) break;
    }
    expect(used).toBe(512);
    expect(p.map.toArray()).toEqual([{ offset: 0, length: 10 }, { offset: 4096, length: 20 }, { offset: 100000, length: 0 }]);
    expect(() => new Sparse10MapParser('m', { maxEntries: 3 }).feed(Buffer.from('2\nx\n'))).toThrow('m: malformed GNU sparse 1.0 map');
    // The declared count is checked against what the member can hold before any entry is read.
    expect(() => new Sparse10MapParser('m', { maxEntries: 2 }).feed(Buffer.from('3\n'))).toThrow('m: GNU sparse map of 3 entries is more than the member can hold');
    expect(() => new Sparse10MapParser('m', { maxEntries: 5, realsize: 100 }).feed(Buffer.from('1\n90\n20\n'))).toThrow('m: sparse map entry 0 ends at 110, past the file\'s size');
  });

  it('rejects a malformed record', () => {
    expect(() => readPax(Buffer.from('99 path=x\n'), 'pax header at byte 0', { maxEntries: 0 })).toThrow('pax header at byte 0: malformed pax record at byte 0');
    for (const bad of ['4 x=\n', ' 9 path=x\n', '9 path=x ', '12 =novalue\n', '99999999999999999 a=b\n']) {
      expect(() => readPax(Buffer.from(bad), 'p', { maxEntries: 0 }), bad).toThrow(/^p: malformed pax record at byte 0$/);
    }
  });
});
