// Tar header codec: GNU tar 1.34's `--format=gnu` headers (what ec2-bundle-image writes) and the reader side for
// ustar, old GNU, GNU sparse, `././@LongLink`, base-256 numbers and pax (incl. GNU pax sparse 0.0/0.1/1.0).
// Pure and synchronous: the streams in src/stream/ do the I/O.
import { ToolError } from '../errors.js';

export interface Region { offset: number; length: number }

export const BLOCK = 512;
export const RECORD = 10240;
const NAME_FIELD = 100;
const SPARSES_IN_HEADER = 4;
const SPARSES_IN_EXTENSION = 21;
const GNU_MAGIC = Buffer.from('ustar  \0', 'latin1');
const ROOT = 'root';

export class TarFormatError extends ToolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'TAR_INVALID' });
    this.name = 'TarFormatError';
  }
}

/** Bytes needed to pad n up to a multiple of 512. */
export function blockPad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** Length of the end-of-archive trailer after `end` bytes: two zero blocks, then zeros up to a whole 10240-byte record. */
export function trailerLength(end: number): number {
  return Math.ceil((end + 2 * BLOCK) / RECORD) * RECORD - end;
}

// ---------------------------------------------------------------------------------------------------------- numbers

/** Writes a number the way GNU tar does: octal with len-1 digits + NUL if it fits, else GNU base-256. */
export function encodeNumber(buf: Buffer, off: number, len: number, value: number): void {
  if (!Number.isSafeInteger(value)) throw new TarFormatError(`tar header: cannot encode ${value}`);
  const digits = len - 1;
  if (value >= 0 && value < 8 ** digits) {
    buf.write(value.toString(8).padStart(digits, '0'), off, digits, 'latin1');
    buf[off + digits] = 0;
    return;
  }
  // Base-256: two's complement big-endian in all len bytes, top bit of the first byte set (0x80 positive, 0xff negative).
  const bits = BigInt(len * 8);
  let v = BigInt(value);
  if (v >= 0n ? v >= 1n << (bits - 1n) : v < -(1n << (bits - 1n))) {
    throw new TarFormatError(`tar header: ${value} does not fit in ${len} bytes`);
  }
  if (v < 0n) v += 1n << bits;
  for (let i = len - 1; i >= 0; i--) {
    buf[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[off] |= 0x80;
}

/** Reads an octal (space/NUL terminated, leading spaces allowed) or GNU base-256 number field. */
export function decodeNumber(buf: Buffer, off: number, len: number, field = 'number'): number {
  const first = buf[off];
  if (first & 0x80) {
    let v = BigInt(first === 0xff ? -1 : first & 0x7f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(buf[off + i]);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new TarFormatError(`tar header: ${field} is out of range`);
    return n;
  }
  let i = off;
  const end = off + len;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) {
    if (buf[i] === 0 && i === off) return 0; // an empty (all-NUL) field
    i++;
  }
  let v = 0;
  for (; i < end; i++) {
    const c = buf[i];
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new TarFormatError(`tar header: ${field} field is not an octal number`);
    v = v * 8 + (c - 0x30);
  }
  return v;
}

// -------------------------------------------------------------------------------------------------------- checksum

/** Unsigned and signed byte sums of a header with the chksum field counted as 8 spaces. */
export function headerChecksums(block: Buffer): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return { unsigned, signed };
}

function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  const { unsigned } = headerChecksums(block);
  block.write(unsigned.toString(8).padStart(6, '0'), 148, 6, 'latin1');
  block[154] = 0;
  block[155] = 0x20;
}

// -------------------------------------------------------------------------------------------------------- encoding

export interface PackHeader {
  name: string;
  mode: number;
  mtime: number;
  /** Stored bytes: the file size, or the sum of the data regions for a sparse member. */
  size: number;
  /** Apparent size and map (ending with (realsize, 0)) for a GNU sparse member. */
  sparse?: { realsize: number; map: Region[] };
}

function baseHeader(name: Buffer, mode: number, size: number, mtime: number, typeflag: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, Math.min(name.length, NAME_FIELD));
  encodeNumber(h, 100, 8, mode);
  encodeNumber(h, 108, 8, 0);
  encodeNumber(h, 116, 8, 0);
  encodeNumber(h, 124, 12, size);
  encodeNumber(h, 136, 12, mtime);
  h.write(typeflag, 156, 1, 'latin1');
  GNU_MAGIC.copy(h, 257);
  h.write(ROOT, 265, 'latin1');
  h.write(ROOT, 297, 'latin1');
  return h;
}

function encodeSparseEntries(block: Buffer, off: number, entries: Region[]): void {
  entries.forEach((e, i) => {
    encodeNumber(block, off + i * 24, 12, e.offset);
    encodeNumber(block, off + i * 24 + 12, 12, e.length);
  });
}

/**
 * Every header block GNU tar (`--format=gnu --owner 0 --group 0`) writes before a regular file's data:
 * an optional `././@LongLink` (type L) with its name blocks, the member header (type 0 or S) and, for sparse
 * members whose map has more than 4 entries, the 21-entry extension blocks.
 */
export function encodeMemberHeaders(p: PackHeader): Buffer {
  const name = Buffer.from(p.name, 'utf8');
  if (name.length === 0) throw new TarFormatError('tar: empty member name');
  const blocks: Buffer[] = [];
  if (name.length > NAME_FIELD) {
    const data = Buffer.alloc(name.length + 1 + blockPad(name.length + 1));
    name.copy(data);
    const ll = baseHeader(Buffer.from('././@LongLink', 'latin1'), 0o644, name.length + 1, 0, 'L');
    writeChecksum(ll);
    blocks.push(ll, data);
  }
  const mode = p.mode & 0o7777;
  if (!p.sparse) {
    const h = baseHeader(name, mode, p.size, p.mtime, '0');
    writeChecksum(h);
    blocks.push(h);
    return Buffer.concat(blocks);
  }
  const map = p.sparse.map;
  const h = baseHeader(name, mode, p.size, p.mtime, 'S');
  encodeSparseEntries(h, 386, map.slice(0, SPARSES_IN_HEADER));
  h[482] = map.length > SPARSES_IN_HEADER ? 1 : 0;
  encodeNumber(h, 483, 12, p.sparse.realsize);
  writeChecksum(h);
  blocks.push(h);
  for (let i = SPARSES_IN_HEADER; i < map.length; i += SPARSES_IN_EXTENSION) {
    const ext = Buffer.alloc(BLOCK);
    encodeSparseEntries(ext, 0, map.slice(i, i + SPARSES_IN_EXTENSION));
    ext[504] = i + SPARSES_IN_EXTENSION < map.length ? 1 : 0;
    blocks.push(ext);
  }
  return Buffer.concat(blocks);
}

// -------------------------------------------------------------------------------------------------------- decoding

export interface TarHeader {
  /** Name from the header (ustar prefix joined), before any L/pax override. */
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  format: 'gnu' | 'ustar' | 'v7';
  /** Old GNU sparse (type S): in-header map entries, whether extension blocks follow, apparent size. */
  sparse?: { map: Region[]; isextended: boolean; realsize: number };
}

function cString(buf: Buffer, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

export function isZeroBlock(block: Buffer): boolean {
  return block.subarray(0, BLOCK).equals(ZERO_BLOCK);
}
const ZERO_BLOCK = Buffer.alloc(BLOCK);

function decodeSparseEntries(block: Buffer, off: number, count: number, what: string): Region[] {
  const out: Region[] = [];
  for (let i = 0; i < count; i++) {
    const o = off + i * 24;
    if (block[o] === 0) break; // unused entries are all NUL
    out.push({ offset: decodeNumber(block, o, 12, `${what} sparse offset`), length: decodeNumber(block, o + 12, 12, `${what} sparse size`) });
  }
  return out;
}

/** Decodes one 512-byte header; null for an all-zero block (end of archive). Verifies the checksum. */
export function decodeHeader(block: Buffer, where = 'tar header'): TarHeader | null {
  if (block.length < BLOCK) throw new TarFormatError(`${where}: truncated header`);
  if (isZeroBlock(block)) return null;
  const stored = decodeNumberSafe(block, 148, 8);
  const sums = headerChecksums(block);
  if (stored === undefined || (stored !== sums.unsigned && stored !== sums.signed)) {
    throw new TarFormatError(`${where}: header checksum mismatch (corrupt or not a tar stream)`);
  }
  const magic = block.toString('latin1', 257, 265);
  const format = magic === 'ustar  \0' ? 'gnu' : magic.startsWith('ustar\0') ? 'ustar' : 'v7';
  let name = cString(block, 0, NAME_FIELD);
  if (format === 'ustar' && block[345] !== 0) name = `${cString(block, 345, 155)}/${name}`;
  const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156]);
  const h: TarHeader = {
    name,
    mode: decodeNumber(block, 100, 8, 'mode'),
    uid: decodeNumber(block, 108, 8, 'uid'),
    gid: decodeNumber(block, 116, 8, 'gid'),
    size: decodeNumber(block, 124, 12, 'size'),
    mtime: decodeNumber(block, 136, 12, 'mtime'),
    typeflag,
    linkname: cString(block, 157, 100),
    format,
  };
  // Base-256 can say -1: only an mtime may be negative.
  if (h.size < 0) throw new TarFormatError(`${where}: negative size`);
  if (typeflag === 'S') {
    h.sparse = {
      map: decodeSparseEntries(block, 386, SPARSES_IN_HEADER, where),
      isextended: block[482] !== 0,
      realsize: decodeNumber(block, 483, 12, 'realsize'),
    };
    if (h.sparse.realsize < 0) throw new TarFormatError(`${where}: negative realsize`);
  }
  return h;
}

function decodeNumberSafe(block: Buffer, off: number, len: number): number | undefined {
  try {
    return decodeNumber(block, off, len);
  } catch {
    return undefined;
  }
}

/** Decodes an old GNU sparse extension block (21 entries + isextended). */
export function decodeSparseExtension(block: Buffer, where = 'tar sparse header'): { map: Region[]; isextended: boolean } {
  return { map: decodeSparseEntries(block, 0, SPARSES_IN_EXTENSION, where), isextended: block[504] !== 0 };
}

/** The name in a `././@LongLink` (type L/K) member's data: up to the first NUL. */
export function decodeLongName(data: Buffer): string {
  const end = data.indexOf(0);
  return data.toString('utf8', 0, end < 0 ? data.length : end);
}


/**
 * A name from a tar header as it may be shown in a message: control, bidi-override and line-separator characters
 * escaped (a hostile name must not drive the terminal or split the one-line error), and long names shortened.
 */
export function shownName(name: string, max = 200): string {
  const short = name.length > max ? `${name.slice(0, max)}…` : name;
  return short.replace(/[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

// ----------------------------------------------------------------------------------------------------- sparse maps

const MAP_CHUNK = 8192; // entries per storage chunk: a map grows without copying

/** What a sparse map may hold; the member's sizes, when known before its map, are checked entry by entry. */
export interface SparseMapLimits {
  /** At most this many entries (each costs 16 bytes). */
  maxEntries: number;
  /** The member's apparent size: no region may end past it. */
  realsize?: number;
  /** The member's stored bytes: the regions may not hold more. */
  stored?: number;
}

/**
 * A sparse map as a reader builds it from hostile input: each entry is checked as it arrives (regions in order,
 * not overlapping, inside the file; a zero-length entry, GNU tar's `(realsize, 0)`, only last) and kept in flat
 * arrays, so the map can never have more entries than the member's bytes allow nor cost more than 16 bytes an entry.
 */
export class SparseMap {
  private readonly chunks: Float64Array[] = [];
  private n = 0;
  private sum = 0;
  private end = 0;
  private closed = false;

  constructor(private readonly where: string, private readonly limits: SparseMapLimits) {}

  get length(): number { return this.n; }
  /** Bytes the regions hold (the member's stored size once the map is complete). */
  get stored(): number { return this.sum; }

  push(offset: number, length: number): void {
    const fail = (why: string) => { throw new TarFormatError(`${this.where}: sparse map entry ${this.n} ${why}`); };
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) fail('is not a valid offset and size');
    if (this.closed) fail('follows the zero-length entry that ends the map');
    if (offset < this.end) fail(`at offset ${offset} is out of order or overlaps the previous region`);
    if (this.n >= this.limits.maxEntries) fail('is more than the member can hold');
    const end = offset + length;
    if (!Number.isSafeInteger(end) || (this.limits.realsize !== undefined && end > this.limits.realsize)) fail(`ends at ${end}, past the file's size`);
    if (this.limits.stored !== undefined && this.sum + length > this.limits.stored) fail('holds more bytes than the member stores');
    const i = this.n % MAP_CHUNK;
    if (i === 0) this.chunks.push(new Float64Array(2 * MAP_CHUNK));
    const chunk = this.chunks[this.chunks.length - 1];
    chunk[2 * i] = offset;
    chunk[2 * i + 1] = length;
    this.n++;
    this.sum += length;
    this.end = end;
    if (length === 0) this.closed = true;
  }

  offset(i: number): number { return this.chunks[Math.floor(i / MAP_CHUNK)][2 * (i % MAP_CHUNK)]; }
  size(i: number): number { return this.chunks[Math.floor(i / MAP_CHUNK)][2 * (i % MAP_CHUNK) + 1]; }

  /** Checks the complete map against the member: it must hold exactly its stored bytes, all inside realsize. */
  finish(realsize: number, stored: number): this {
    if (this.end > realsize) throw new TarFormatError(`${this.where}: sparse map reaches ${this.end}, past the file's size ${realsize}`);
    if (this.sum !== stored) throw new TarFormatError(`${this.where}: sparse map holds ${this.sum} bytes but the member stores ${stored}`);
    return this;
  }

  toArray(): Region[] {
    return Array.from({ length: this.n }, (_, i) => ({ offset: this.offset(i), length: this.size(i) }));
  }
}

// ------------------------------------------------------------------------------------------------------------- pax

/** What a member's pax records change about it. */
export interface PaxOverrides {
  path?: string;
  size?: number;
  mtime?: number;
  linkpath?: string;
  /** GNU pax sparse: 0.x carries the map here; 1.0 (`dataMap`) stores it at the start of the member's data. */
  sparse?: { realsize: number; map?: SparseMap; dataMap?: boolean };
}

/** Every key is shorter than this; longer keys are unknown ones and are skipped undecoded. */
const MAX_KEY = 64;
const MAX_DIGITS = 16;

/**
 * Reads pax extended header data (records `LEN KEY=VALUE\n`) straight into what they change: records are not kept,
 * numbers are read from the bytes, and a 0.x sparse map goes entry by entry into a SparseMap of at most
 * `maxEntries` entries, so memory stays bounded by the header's size whatever it holds. A global header (`g`) may
 * not carry GNU sparse keys. Keys not listed are ignored, as POSIX allows.
 */
export function readPax(data: Buffer, where: string, opts: { global?: boolean; maxEntries: number }): PaxOverrides {
  const o: PaxOverrides = {};
  let realsize: number | undefined;
  let major: number | undefined;
  let map: SparseMap | undefined;
  let pendingOffset: number | undefined;
  let sparseName: string | undefined;
  const newMap = () => new SparseMap(`${where}: GNU sparse map`, { maxEntries: opts.maxEntries });
  const shown = (from: number, to: number) => shownName(data.toString('utf8', from, Math.min(to, from + 40)), 40);
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // padding
    const malformed = () => new TarFormatError(`${where}: malformed pax record at byte ${pos}`);
    let sp = pos;
    let len = 0;
    while (sp < data.length && sp - pos < MAX_DIGITS && data[sp] >= 0x30 && data[sp] <= 0x39) len = len * 10 + data[sp++] - 0x30;
    if (sp === pos || data[sp] !== 0x20 || len <= sp + 1 - pos || pos + len > data.length || data[pos + len - 1] !== 0x0a) throw malformed();
    const stop = pos + len - 1; // the newline
    const eq = data.indexOf(0x3d, sp + 1);
    if (eq <= sp + 1 || eq >= stop) throw malformed();
    const key = eq - sp - 1 < MAX_KEY ? data.toString('utf8', sp + 1, eq) : '';
    const from = eq + 1;
    const int = (): number => {
      let n = 0;
      if (stop === from || stop - from > MAX_DIGITS) n = NaN;
      for (let i = from; i < stop && !Number.isNaN(n); i++) n = data[i] >= 0x30 && data[i] <= 0x39 ? n * 10 + data[i] - 0x30 : NaN;
      if (!Number.isSafeInteger(n)) throw new TarFormatError(`${where}: bad value for ${key}: '${shown(from, stop)}'`);
      return n;
    };
    if (opts.global && key.startsWith('GNU.sparse.')) throw new TarFormatError(`${where}: GNU sparse keys in a global pax header`);
    switch (key) {
      case 'path': o.path = data.toString('utf8', from, stop); break;
      case 'linkpath': o.linkpath = data.toString('utf8', from, stop); break;
      case 'size': o.size = int(); break;
      case 'mtime': {
        const value = stop - from <= 40 ? data.toString('latin1', from, stop) : '';
        const t = Number(value);
        if (!/^-?\d+(\.\d+)?$/.test(value) || !Number.isFinite(t)) throw new TarFormatError(`${where}: bad value for mtime: '${shown(from, stop)}'`);
        o.mtime = t;
        break;
      }
      case 'GNU.sparse.name': sparseName = data.toString('utf8', from, stop); break;
      case 'GNU.sparse.size': // 0.x
      case 'GNU.sparse.realsize': realsize = int(); break; // 1.0
      case 'GNU.sparse.major': major = int(); break;
      case 'GNU.sparse.numblocks': {
        const n = int();
        if (n > opts.maxEntries) throw new TarFormatError(`${where}: GNU sparse map of ${n} entries is more than a member can hold`);
        map ??= newMap();
        break;
      }
      case 'GNU.sparse.offset': // 0.0: offset/numbytes pairs
        if (pendingOffset !== undefined) throw new TarFormatError(`${where}: GNU.sparse.offset without GNU.sparse.numbytes`);
        pendingOffset = int();
        break;
      case 'GNU.sparse.numbytes':
        if (pendingOffset === undefined) throw new TarFormatError(`${where}: GNU.sparse.numbytes without GNU.sparse.offset`);
        (map ??= newMap()).push(pendingOffset, int());
        pendingOffset = undefined;
        break;
      case 'GNU.sparse.map': { // 0.1: offset,size,offset,size,...
        if (map && map.length > 0) throw new TarFormatError(`${where}: more than one GNU sparse map`);
        map ??= newMap();
        let value = 0;
        let digits = 0;
        let pending = -1;
        for (let i = from; i <= stop; i++) {
          const c = i < stop ? data[i] : 0x2c;
          if (c >= 0x30 && c <= 0x39 && digits < MAX_DIGITS) {
            value = value * 10 + c - 0x30;
            digits++;
          } else if (c === 0x2c && digits > 0) {
            if (pending < 0) pending = value;
            else { map.push(pending, value); pending = -1; }
            value = 0;
            digits = 0;
          } else if (!(c === 0x2c && i === stop && from === stop)) { // an empty map is allowed
            throw new TarFormatError(`${where}: malformed GNU.sparse.map`);
          }
        }
        if (pending >= 0) throw new TarFormatError(`${where}: GNU.sparse.map has an odd number of values`);
        break;
      }
      default: break;
    }
    pos += len;
  }
  if (pendingOffset !== undefined) throw new TarFormatError(`${where}: GNU.sparse.offset without GNU.sparse.numbytes`);
  if (sparseName !== undefined) o.path = sparseName;
  if (major !== undefined && major !== 1) throw new TarFormatError(`${where}: unsupported GNU sparse format ${major}.x`);
  if (major === 1) {
    if (realsize === undefined) throw new TarFormatError(`${where}: GNU sparse 1.0 member without GNU.sparse.realsize`);
    if (map) throw new TarFormatError(`${where}: GNU sparse 1.0 member with a 0.x map`);
    o.sparse = { realsize, dataMap: true };
  } else if (map !== undefined || realsize !== undefined) {
    if (map === undefined || realsize === undefined) throw new TarFormatError(`${where}: incomplete GNU sparse 0.x map`);
    o.sparse = { realsize, map };
  }
  return o;
}

/**
 * Incremental parser of the GNU sparse 1.0 map stored at the start of a member's data: decimal lines
 * `count`, then `offset` and `size` per region, padded with NULs to a 512-byte boundary.
 */
export class Sparse10MapParser {
  readonly map: SparseMap;
  private count = -1;
  private pendingOffset = -1;
  private value = 0;
  private digits = 0;
  private consumed = 0;
  private done = false;

  constructor(private readonly where: string, private readonly limits: SparseMapLimits) {
    this.map = new SparseMap(where, limits);
  }

  /** Feeds bytes; returns how many were consumed, and whether the map (with its padding) is complete. */
  feed(buf: Buffer): { used: number; complete: boolean } {
    let i = 0;
    while (i < buf.length && !this.done) {
      const c = buf[i++];
      this.consumed++;
      if (c === 0x0a) {
        if (this.digits === 0) throw new TarFormatError(`${this.where}: malformed GNU sparse 1.0 map`);
        const n = this.value;
        this.value = 0;
        this.digits = 0;
        if (this.count < 0) {
          if (n > this.limits.maxEntries) throw new TarFormatError(`${this.where}: GNU sparse map of ${n} entries is more than the member can hold`);
          this.count = n;
        } else if (this.pendingOffset < 0) {
          this.pendingOffset = n;
        } else {
          this.map.push(this.pendingOffset, n);
          this.pendingOffset = -1;
        }
        if (this.count >= 0 && this.map.length === this.count && this.pendingOffset < 0) this.done = true;
      } else if (c >= 0x30 && c <= 0x39 && this.digits < MAX_DIGITS) {
        this.value = this.value * 10 + c - 0x30;
        this.digits++;
      } else {
        throw new TarFormatError(`${this.where}: malformed GNU sparse 1.0 map`);
      }
    }
    if (!this.done) return { used: i, complete: false };
    // Skip the padding up to the block boundary.
    const pad = Math.min(blockPad(this.consumed), buf.length - i);
    i += pad;
    this.consumed += pad;
    return { used: i, complete: this.consumed % BLOCK === 0 };
  }

  /** Bytes of member data taken by the map and its padding so far. */
  get bytes(): number {
    return this.consumed;
  }
}
