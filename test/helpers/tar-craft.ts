// Hand-made tar pieces for hostile-input tests, written field by field here (not with src/format/tar-header.ts),
// so the tests do not lean on the codec they check.

const BLOCK = 512;

export interface RawHeader {
  name: string;
  size: number;
  /** Type flag: '0' file, '5' directory, 'x'/'g' pax, 'L' long name, 'S' old GNU sparse, '2' symlink... */
  type?: string;
  mode?: number;
  mtime?: number;
  /** Old GNU sparse: realsize, up to 4 in-header entries, and whether extension blocks follow. */
  sparse?: { realsize: number; map: [number, number][]; extended: boolean };
}

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
  buf[off + len - 1] = 0;
}

/** A size or offset field: octal if it fits, else GNU base-256. */
function number12(buf: Buffer, off: number, value: number): void {
  if (value < 8 ** 11) return octal(buf, off, 12, value);
  let v = BigInt(value);
  for (let i = 11; i >= 0; i--) { buf[off + i] = Number(v & 0xffn); v >>= 8n; }
  buf[off] |= 0x80;
}

/** One 512-byte header block with a valid checksum; the name may hold any bytes (up to 100). */
export function rawHeader(h: RawHeader): Buffer {
  const b = Buffer.alloc(BLOCK);
  Buffer.from(h.name, 'utf8').copy(b, 0, 0, 100);
  octal(b, 100, 8, h.mode ?? 0o644);
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  number12(b, 124, h.size);
  octal(b, 136, 12, h.mtime ?? 1262304000);
  b.write(h.type ?? '0', 156, 1, 'latin1');
  b.write('ustar  \0', 257, 'latin1');
  b.write('root', 265, 'latin1');
  b.write('root', 297, 'latin1');
  if (h.sparse) {
    h.sparse.map.slice(0, 4).forEach(([o, n], i) => { number12(b, 386 + i * 24, o); number12(b, 398 + i * 24, n); });
    b[482] = h.sparse.extended ? 1 : 0;
    number12(b, 483, h.sparse.realsize);
  }
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i];
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** An old GNU sparse extension block: up to 21 entries and the isextended flag. */
export function sparseExtension(map: [number, number][], extended: boolean): Buffer {
  const b = Buffer.alloc(BLOCK);
  map.slice(0, 21).forEach(([o, n], i) => { number12(b, i * 24, o); number12(b, i * 24 + 12, n); });
  b[504] = extended ? 1 : 0;
  return b;
}

export const pad = (n: number): Buffer => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** A pax record `LEN KEY=VALUE\n`. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = Buffer.byteLength(body);
  let len = n + 1;
  while (String(len).length + n !== len) len++;
  return `${len}${body}`;
}

/** A header of the given type and its data, padded to whole blocks. */
export function entry(h: Omit<RawHeader, 'size'>, data: Buffer | string = Buffer.alloc(0)): Buffer {
  const d = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([rawHeader({ ...h, size: d.length }), d, pad(d.length)]);
}

/** A pax extended (`x`) or global (`g`) header holding these records. */
export function paxEntry(records: string, type: 'x' | 'g' = 'x'): Buffer {
  return entry({ name: 'PaxHeaders/x', type }, records);
}

/** The end of an archive after `length` bytes: two zero blocks, then zeros to a whole 10240-byte record. */
export function endOfArchive(length: number): Buffer {
  return Buffer.alloc(Math.ceil((length + 2 * BLOCK) / 10240) * 10240 - length);
}

/** Members joined and closed with the end-of-archive trailer. */
export function archive(...members: Buffer[]): Buffer {
  const body = Buffer.concat(members);
  return Buffer.concat([body, endOfArchive(body.length)]);
}

/** Extension blocks for `count` entries (entry i at `at(i)`), the last one not extended; fast for millions. */
export function sparseExtensions(count: number, at: (i: number) => [number, number]): Buffer {
  const blocks = Math.ceil(count / 21);
  const b = Buffer.alloc(blocks * BLOCK);
  const put = (off: number, v: number) => {
    for (let d = 10; d >= 0; d--) { b[off + d] = 0x30 + (v % 8); v = Math.floor(v / 8); }
  };
  for (let i = 0; i < count; i++) {
    const off = Math.floor(i / 21) * BLOCK + (i % 21) * 24;
    const [o, n] = at(i);
    put(off, o);
    put(off + 12, n);
  }
  for (let k = 0; k < blocks - 1; k++) b[k * BLOCK + 504] = 1;
  return b;
}
