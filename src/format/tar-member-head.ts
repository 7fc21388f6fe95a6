// The start of a tar stream's first file, read from a prefix of the stream: enough to look at an image's first
// sectors without unpacking the bundle. Pure; every offset is checked against the prefix it is given.
import {
  BLOCK, blockPad, decodeHeader, decodeLongName, decodeSparseExtension, readPax, Sparse10MapParser,
  TarFormatError, type PaxOverrides, type Region,
} from './tar-header.js';

/** The most map entries read from a prefix: the prefix is small, so its maps are too. */
const MAX_ENTRIES = 1 << 16;

export interface MemberHead {
  name: string;
  /** The file's (apparent) size. */
  size: number;
  /** Its first min(want, size) bytes; holes of a sparse member are zeros. */
  head: Buffer;
}

const META = new Set(['L', 'K', 'x', 'g']);
const REGULAR = new Set(['0', '7', 'S']);

/**
 * The first `want` bytes of the first regular file in `tar` (GNU, ustar, old GNU sparse, pax incl. GNU sparse
 * 0.x/1.0), or undefined when `tar` ends before they do. A malformed header is a TarFormatError.
 */
export function firstMemberHead(tar: Buffer, want: number): MemberHead | undefined {
  let pos = 0;
  let longName: string | undefined;
  let pax: PaxOverrides = {};
  let global: PaxOverrides = {};
  for (;;) {
    if (pos + BLOCK > tar.length) return undefined;
    const where = `tar header at byte ${pos}`;
    const h = decodeHeader(tar.subarray(pos, pos + BLOCK), where);
    if (!h) throw new TarFormatError('the tar stream holds no file');
    pos += BLOCK;
    if (META.has(h.typeflag) || h.typeflag === '5') {
      if (pos + h.size > tar.length) return undefined;
      const data = tar.subarray(pos, pos + h.size);
      if (h.typeflag === 'L') longName = decodeLongName(data);
      else if (h.typeflag === 'x') pax = readPax(data, where, { maxEntries: MAX_ENTRIES });
      else if (h.typeflag === 'g') global = { ...global, ...readPax(data, where, { global: true, maxEntries: MAX_ENTRIES }) };
      if (h.typeflag === '5') { longName = undefined; pax = {}; } // a directory entry: its overrides end with it
      pos += h.size + blockPad(h.size);
      continue;
    }
    if (!REGULAR.has(h.typeflag)) throw new TarFormatError(`${where}: the first member is of type '${h.typeflag}', not the image file`);

    const o: PaxOverrides = { ...global, ...pax };
    const name = o.path ?? longName ?? h.name;
    let stored = o.size ?? h.size;
    let size: number;
    let map: Region[];
    if (h.sparse) {
      map = [...h.sparse.map];
      for (let extended = h.sparse.isextended; extended;) {
        if (pos + BLOCK > tar.length) return undefined;
        const ext = decodeSparseExtension(tar.subarray(pos, pos + BLOCK), where);
        map.push(...ext.map);
        extended = ext.isextended;
        pos += BLOCK;
      }
      size = h.sparse.realsize;
    } else if (o.sparse?.dataMap) {
      const parser = new Sparse10MapParser(where, { maxEntries: MAX_ENTRIES, realsize: o.sparse.realsize });
      const { complete } = parser.feed(tar.subarray(pos, Math.min(tar.length, pos + stored)));
      if (!complete) {
        if (pos + stored <= tar.length) throw new TarFormatError(`${where}: GNU sparse 1.0 map runs past the member's data`);
        return undefined;
      }
      map = parser.map.toArray();
      const used = parser.bytes;
      pos += used;
      stored -= used;
      size = o.sparse.realsize;
    } else if (o.sparse) {
      map = o.sparse.map?.toArray() ?? [];
      size = o.sparse.realsize;
    } else {
      map = [{ offset: 0, length: stored }];
      size = stored;
    }

    const n = Math.min(want, size);
    const head = Buffer.alloc(n);
    let end = 0; // the image offset the previous region ended at
    let from = pos; // where the next region's bytes are in the stream
    for (const r of map) {
      if (r.offset < end || r.offset + r.length > size) throw new TarFormatError(`${where}: the sparse map of '${name}' is out of order or past its size`);
      if (r.offset >= n) break;
      const take = Math.min(r.length, n - r.offset);
      if (from + take > tar.length) return undefined;
      tar.copy(head, r.offset, from, from + take);
      from += r.length;
      end = r.offset + r.length;
    }
    return { name, size, head };
  }
}
