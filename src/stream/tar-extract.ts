// Extracts a tar stream into a directory: regular files (ustar, GNU, GNU sparse, pax incl. GNU pax sparse 0.x/1.0)
// and directories. Files go to temporary names and get their final names only in commit(); holes are restored
// (sparse maps, and every 4 KiB-aligned all-zero block becomes a hole). Links, devices and FIFOs are refused:
// an image bundle holds one regular file, and anything else is a sign of a foreign or hostile archive.
import { Writable } from 'node:stream';
import { open, mkdir, rename, rm, rmdir, chmod, utimes, type FileHandle } from 'node:fs/promises';
import { join, dirname, resolve, sep } from 'node:path';
import { ToolError } from '../errors.js';
import { tempPathBeside } from './atomic-write.js';
import {
  BLOCK, blockPad, decodeHeader, decodeSparseExtension, decodeLongName, interpretPax, parsePax,
  Sparse10MapParser, TarFormatError, type PaxOverrides, type PaxRecord, type Region, type TarHeader,
} from '../format/tar-header.js';

export interface ExtractedFile { name: string; path: string; size: number }

const WRITE_BUFFER = 4 << 20; // a multiple of HOLE_BLOCK
const HOLE_BLOCK = 4096;
const ZERO = Buffer.alloc(WRITE_BUFFER);
const MAX_LONG_NAME = 1 << 20;
const MAX_PAX = 64 << 20;
const MAX_SPARSE_ENTRIES = 10_000_000;

const REFUSED_TYPES: Record<string, string> = {
  '1': 'hard link', '2': 'symbolic link', '3': 'character device', '4': 'block device', '6': 'FIFO',
  'M': 'multi-volume continuation', 'N': 'old GNU long-name record',
};

/** Writes a file from (data, file offset) pieces in large positional writes, skipping all-zero 4 KiB blocks. */
class HoleWriter {
  private bufs = [Buffer.allocUnsafe(WRITE_BUFFER), Buffer.allocUnsafe(WRITE_BUFFER)];
  private cur = 0;
  private len = 0;
  private start = 0; // file offset of bufs[cur][0]
  private inflight: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(private readonly fh: FileHandle) {}

  async write(data: Buffer, offset: number): Promise<void> {
    let p = 0;
    while (p < data.length) {
      const at = offset + p;
      if (this.len > 0 && at !== this.start + this.len) await this.flush();
      if (this.len === 0) this.start = at;
      // A buffer that starts unaligned ends at a 4 KiB boundary of the file, so the following ones are aligned.
      const cap = WRITE_BUFFER - (this.start % HOLE_BLOCK);
      const n = Math.min(cap - this.len, data.length - p);
      data.copy(this.bufs[this.cur], this.len, p, p + n);
      this.len += n;
      p += n;
      if (this.len === cap) await this.flush();
    }
  }

  /** Starts writing the current buffer (one write may be in flight while the other buffer fills). */
  private async flush(): Promise<void> {
    await this.settle();
    if (this.len === 0) return;
    const buf = this.bufs[this.cur];
    const { len, start } = this;
    this.cur ^= 1;
    this.len = 0;
    this.inflight = this.writeRuns(buf, len, start).catch((err: unknown) => { this.failure = err; });
  }

  private async settle(): Promise<void> {
    await this.inflight;
    if (this.failure) throw this.failure;
  }

  private async writeRuns(buf: Buffer, len: number, start: number): Promise<void> {
    if (buf.subarray(0, len).equals(ZERO.subarray(0, len))) return;
    let run = -1;
    let i = 0;
    while (i < len) {
      const end = Math.min(len, i + HOLE_BLOCK - ((start + i) % HOLE_BLOCK));
      const zero = buf.subarray(i, end).equals(ZERO.subarray(0, end - i));
      if (!zero && run < 0) run = i;
      if (zero && run >= 0) {
        await this.writeAll(buf, run, i, start);
        run = -1;
      }
      i = end;
    }
    if (run >= 0) await this.writeAll(buf, run, len, start);
  }

  private async writeAll(buf: Buffer, from: number, to: number, start: number): Promise<void> {
    while (from < to) {
      const { bytesWritten } = await this.fh.write(buf, from, to - from, start + from);
      from += bytesWritten;
    }
  }

  async finish(): Promise<void> {
    await this.flush();
    await this.settle();
  }
}

interface Member {
  name: string;
  path: string;
  tmp: string;
  fh: FileHandle;
  writer: HoleWriter;
  realsize: number;
  mode: number;
  mtime: number;
  regions: Region[];
  region: number;
  inRegion: number;
}

type State =
  | { kind: 'header' }
  | { kind: 'extension'; header: TarHeader; map: Region[] }
  | { kind: 'meta'; header: TarHeader; chunks: Buffer[]; left: number }
  | { kind: 'map10'; parser: Sparse10MapParser; header: TarHeader; left: number; overrides: PaxOverrides; name: string }
  | { kind: 'data'; left: number; pad: number }
  | { kind: 'skip'; left: number }
  | { kind: 'end' };

export class TarExtract extends Writable {
  private readonly directory: string;
  private state: State = { kind: 'header' };
  private readonly block = Buffer.alloc(BLOCK);
  private blockLen = 0;
  private offset = 0; // stream offset, for error messages
  private longName?: string;
  private paxLocal: PaxRecord[] = [];
  private paxGlobal: PaxRecord[] = [];
  private member?: Member;
  private readonly temps: { tmp: string; path: string; name: string; size: number }[] = [];
  private readonly dirs: { path: string; mode: number; mtime: number }[] = [];
  private readonly createdDirs: string[] = [];
  private busy: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private ended = false;

  constructor(opts: { directory: string }) {
    super({ highWaterMark: 8 << 20 });
    this.directory = resolve(opts.directory);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const job = this.consume(chunk);
    this.busy = job.catch(() => undefined);
    job.then(() => cb(), (err: Error) => cb(err));
  }

  // Chunks queued while a write was busy are parsed in one go (gunzip emits many small chunks).
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    const job = (async () => { for (const c of chunks) await this.consume(c.chunk); })();
    this.busy = job.catch(() => undefined);
    job.then(() => cb(), (err: Error) => cb(err));
  }

  override _final(cb: (err?: Error | null) => void): void {
    const s = this.state;
    if (s.kind === 'end' || (s.kind === 'header' && this.blockLen === 0)) {
      this.ended = true;
      cb();
    } else {
      const what = this.member ? `in member '${this.member.name}'` : 'in a header';
      cb(new ToolError(`tar stream is truncated (ends ${what} at byte ${this.offset}); the bundle is incomplete or corrupt`));
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.stopped = true;
    cb(err);
  }

  /** Renames every extracted file to its final name and applies directory modes; only after all checks passed. */
  async commit(): Promise<ExtractedFile[]> {
    if (!this.ended) throw new ToolError('tar extraction is incomplete: commit() called before the tar stream ended');
    const out: ExtractedFile[] = [];
    while (this.temps.length > 0) {
      const t = this.temps[0];
      await rename(t.tmp, t.path);
      this.temps.shift();
      out.push({ name: t.name, path: t.path, size: t.size });
    }
    for (const d of this.dirs.reverse()) {
      await chmod(d.path, d.mode & 0o7777);
      await utimes(d.path, Date.now() / 1000, d.mtime);
    }
    this.createdDirs.length = 0;
    return out;
  }

  /** Removes the temporary files (and the directories this extraction created, if empty). */
  async abort(): Promise<void> {
    this.stopped = true;
    await this.busy;
    const m = this.member;
    this.member = undefined;
    await m?.fh.close().catch(() => undefined);
    for (const t of this.temps.splice(0)) await rm(t.tmp, { force: true });
    for (const d of this.createdDirs.splice(0).sort((a, b) => b.length - a.length)) await rmdir(d).catch(() => undefined);
  }

  // ------------------------------------------------------------------------------------------------------ parsing

  private async consume(chunk: Buffer): Promise<void> {
    let p = 0;
    while (p < chunk.length) {
      if (this.stopped) throw new ToolError('tar extraction was aborted');
      const s = this.state;
      const avail = chunk.length - p;
      switch (s.kind) {
        case 'header':
        case 'extension': {
          const n = Math.min(BLOCK - this.blockLen, avail);
          chunk.copy(this.block, this.blockLen, p, p + n);
          this.blockLen += n;
          p += n;
          this.offset += n;
          if (this.blockLen === BLOCK) {
            this.blockLen = 0;
            if (s.kind === 'header') await this.onHeader();
            else await this.onExtension(s);
          }
          break;
        }
        case 'meta': {
          const n = Math.min(s.left, avail);
          s.chunks.push(Buffer.from(chunk.subarray(p, p + n)));
          s.left -= n;
          p += n;
          this.offset += n;
          if (s.left === 0) this.onMeta(s.header, Buffer.concat(s.chunks));
          break;
        }
        case 'map10': {
          const { used, complete } = s.parser.feed(chunk.subarray(p, p + Math.min(avail, s.left)));
          p += used;
          this.offset += used;
          s.left -= used;
          if (complete) await this.startFile(s.header, s.name, s.overrides, s.parser.map, s.left);
          else if (s.left === 0) throw this.corrupt(`GNU sparse 1.0 map of '${s.name}' is longer than the member`);
          break;
        }
        case 'data': {
          const m = this.member!;
          const r = m.regions[m.region];
          const n = Math.min(avail, r.length - m.inRegion);
          await m.writer.write(chunk.subarray(p, p + n), r.offset + m.inRegion);
          p += n;
          this.offset += n;
          s.left -= n;
          m.inRegion += n;
          if (m.inRegion === r.length) {
            m.region++;
            m.inRegion = 0;
          }
          if (s.left === 0) await this.finishFile(s.pad);
          break;
        }
        case 'skip': {
          const n = Math.min(s.left, avail);
          p += n;
          this.offset += n;
          s.left -= n;
          if (s.left === 0) this.state = { kind: 'header' };
          break;
        }
        case 'end':
          this.offset += avail; // the zero blocks and record padding after the last member
          p = chunk.length;
          break;
      }
    }
  }

  private corrupt(msg: string): ToolError {
    return new TarFormatError(`tar stream at byte ${this.offset}: ${msg}`);
  }

  private async onHeader(): Promise<void> {
    const where = `tar header at byte ${this.offset - BLOCK}`;
    const h = decodeHeader(this.block, where);
    if (!h) {
      this.state = { kind: 'end' };
      return;
    }
    const t = h.typeflag;
    if (t === 'L' || t === 'K' || t === 'x' || t === 'g') {
      const max = t === 'L' || t === 'K' ? MAX_LONG_NAME : MAX_PAX;
      if (h.size > max) throw this.corrupt(`${t === 'x' || t === 'g' ? 'pax header' : 'long name'} of ${h.size} bytes is too large`);
      if (h.size === 0) this.onMeta(h, Buffer.alloc(0));
      else this.state = { kind: 'meta', header: h, chunks: [], left: h.size + blockPad(h.size) };
      return;
    }
    if (h.sparse?.isextended) {
      this.state = { kind: 'extension', header: h, map: h.sparse.map };
      return;
    }
    await this.onMember(h);
  }

  private async onExtension(s: Extract<State, { kind: 'extension' }>): Promise<void> {
    const ext = decodeSparseExtension(this.block, `tar sparse header at byte ${this.offset - BLOCK}`);
    s.map.push(...ext.map);
    if (s.map.length > MAX_SPARSE_ENTRIES) throw this.corrupt('sparse map is too large');
    if (ext.isextended) return;
    this.state = { kind: 'header' };
    await this.onMember(s.header);
  }

  private onMeta(h: TarHeader, data: Buffer): void {
    const body = data.subarray(0, h.size);
    const where = `tar header at byte ${this.offset - data.length - BLOCK}`;
    if (h.typeflag === 'L') this.longName = decodeLongName(body);
    else if (h.typeflag === 'x') this.paxLocal.push(...parsePax(body, `pax header at byte ${this.offset - data.length - BLOCK}`));
    else if (h.typeflag === 'g') this.paxGlobal.push(...parsePax(body, where));
    this.state = { kind: 'header' };
  }

  private async onMember(h: TarHeader): Promise<void> {
    const overrides = interpretPax([...this.paxGlobal, ...this.paxLocal], `pax header of '${h.name}'`);
    const name = overrides.path ?? this.longName ?? h.name;
    this.paxLocal = [];
    this.longName = undefined;
    const size = overrides.size ?? h.size;
    const t = h.typeflag;
    const pad = blockPad(size);
    if (t === '5' || t === 'D') {
      const rel = safeRelativeName(name);
      if (rel) {
        const path = join(this.directory, rel);
        await this.makeDirs(path);
        this.dirs.push({ path, mode: h.mode, mtime: overrides.mtime ?? h.mtime });
      }
      this.state = { kind: 'skip', left: size + pad };
      if (size + pad === 0) this.state = { kind: 'header' };
      return;
    }
    if (t === 'V') { // volume label
      this.state = size + pad === 0 ? { kind: 'header' } : { kind: 'skip', left: size + pad };
      return;
    }
    if (REFUSED_TYPES[t]) {
      throw new ToolError(`tar member '${name}' is a ${REFUSED_TYPES[t]}; only regular files and directories can be unbundled`);
    }
    if (t !== '0' && t !== '7' && t !== 'S') {
      throw new ToolError(`tar member '${name}' has unsupported type '${t}'; only regular files and directories can be unbundled`);
    }
    // Throws on absolute or '..' names, before anything is written.
    if (!safeRelativeName(name)) throw new ToolError(`tar member '${name}' has no file name; refusing to extract it`);
    if (overrides.sparse?.dataMap) {
      this.state = { kind: 'map10', parser: new Sparse10MapParser(`GNU sparse map of '${name}'`, MAX_SPARSE_ENTRIES), header: h, left: size, overrides, name };
      if (size === 0) throw this.corrupt(`GNU sparse 1.0 member '${name}' has no map`);
      return;
    }
    await this.startFile(h, name, overrides, undefined, size);
  }

  /** Opens the temporary file and sets up the data regions; `left` is the member's remaining stored bytes. */
  private async startFile(h: TarHeader, name: string, o: PaxOverrides, map10: Region[] | undefined, left: number): Promise<void> {
    const rel = safeRelativeName(name)!;
    const total = o.sparse?.dataMap ? o.size ?? h.size : left;
    let realsize = left;
    let map: Region[] = [{ offset: 0, length: left }];
    if (o.sparse) {
      realsize = o.sparse.realsize;
      map = map10 ?? o.sparse.map!;
    } else if (h.sparse) {
      realsize = h.sparse.realsize;
      map = h.sparse.map;
    }
    const regions = map.filter((r) => r.length > 0);
    const stored = regions.reduce((n, r) => n + r.length, 0);
    if (stored !== left || regions.some((r) => r.offset + r.length > realsize)) {
      throw this.corrupt(`sparse map of '${name}' does not match its ${left} stored bytes and size ${realsize}`);
    }
    const path = join(this.directory, rel);
    await this.makeDirs(dirname(path));
    const tmp = tempPathBeside(path);
    const fh = await open(tmp, 'wx', 0o600);
    this.temps.push({ tmp, path, name: rel, size: realsize });
    this.member = {
      name: rel, path, tmp, fh, writer: new HoleWriter(fh), realsize, mode: h.mode,
      mtime: o.mtime ?? h.mtime, regions, region: 0, inRegion: 0,
    };
    const pad = blockPad(total);
    if (left === 0) await this.finishFile(pad);
    else this.state = { kind: 'data', left, pad };
  }

  private async finishFile(pad: number): Promise<void> {
    const m = this.member!;
    await m.writer.finish();
    await m.fh.truncate(m.realsize);
    await m.fh.chmod(m.mode & 0o7777);
    await m.fh.utimes(Date.now() / 1000, m.mtime);
    this.member = undefined;
    await m.fh.close();
    this.state = pad === 0 ? { kind: 'header' } : { kind: 'skip', left: pad };
  }

  /** mkdir -p inside the target directory, remembering what it created (for abort). */
  private async makeDirs(path: string): Promise<void> {
    const first = await mkdir(path, { recursive: true });
    if (!first) return;
    for (let d = path; d.length >= first.length; d = dirname(d)) this.createdDirs.push(d);
  }
}

/**
 * The member name as a path relative to the target directory ('' for the directory itself); throws on absolute
 * names and names with a '..' component, which could write outside it.
 */
export function safeRelativeName(name: string): string {
  if (name.startsWith('/')) {
    throw new ToolError(`tar member '${name}' has an absolute name; refusing to extract it (nothing was written for it)`);
  }
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) {
    throw new ToolError(`tar member '${name}' has a '..' component; refusing to extract it (nothing was written for it)`);
  }
  if (name.includes('\0')) throw new ToolError(`tar member '${name}' has a NUL in its name; refusing to extract it`);
  return parts.join(sep);
}
