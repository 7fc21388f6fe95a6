// Extracts a tar stream into a directory: regular files (ustar, GNU, GNU sparse, pax incl. GNU pax sparse 0.x/1.0)
// and directories. Files go to temporary names and get their final names only in commit(), all or none; holes are
// restored (sparse maps, and every 4 KiB-aligned all-zero block becomes a hole). Links, devices and FIFOs are
// refused: an image bundle holds one regular file, and anything else is a sign of a foreign or hostile archive.
//
// The stream is hostile until its digest is checked, which is only at its end, so everything here is bounded by
// the manifest's image size and by fixed header limits, and every name is confined to the destination: each path
// component must be a plain file name, and no component under the destination is followed if it is a symlink.
import { Writable } from 'node:stream';
import { constants } from 'node:fs';
import { open, mkdir, lstat, rename, rm, rmdir, chmod, utimes, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ToolError } from '../errors.js';
import { ioError } from '../io-errors.js';
import { isPlainFileName } from '../format/part-name.js';
import {
  BLOCK, blockPad, decodeHeader, decodeSparseExtension, decodeLongName, readPax, shownName, Sparse10MapParser,
  SparseMap, TarFormatError, type PaxOverrides, type TarHeader,
} from '../format/tar-header.js';
import { tempPathBeside } from './atomic-write.js';
import { BlockWriter, fileRangeWriter, writeBuffers } from './block-writer.js';
import type { ImageSink } from './image-sink.js';

export interface ExtractedFile { name: string; path: string; size: number }

export interface TarExtractOptions {
  /** The directory the members are extracted into; or, instead: */
  directory?: string;
  /**
   * Where the stream's one regular file goes (see ImageSink): any other member (a second file, a directory) is
   * refused, as is a stream without a file. commit() finishes the sink; abort() aborts it.
   */
  sink?: ImageSink;
  /**
   * The image size the manifest states (its `<size>`): the files restored may not be larger, one by one or
   * together, and the tar stream may not be longer than such an image needs.
   */
  imageSize: number;
}

/** A `././@LongLink` name: far more than PATH_MAX. */
const MAX_LONG_NAME = 64 << 10;
/** A pax header: room for a GNU 0.x sparse map of some 400 000 regions. */
const MAX_PAX = 8 << 20;
/**
 * Entries of one sparse map (16 bytes each, so at most 16 MiB: with the rest of the pipeline, an unbundle stays under
 * 200 MB). 8 GiB of 4 KiB data blocks and 4 KiB holes alternating would need all of them; real images need far fewer.
 */
const MAX_SPARSE_ENTRIES = 1 << 20;
/** Files and directories one extraction may create: a bundle holds one image. */
const MAX_ENTRIES = 1024;
const PATH_MAX = 4096;
const NAME_MAX = 255;

/**
 * The longest tar stream an image of `imageSize` bytes needs: its data, sparse map blocks (at most 1/42 of it, for
 * regions of 512 bytes), headers, a pax header and the end-of-archive record.
 */
export function maxTarBytes(imageSize: number): number {
  return imageSize + Math.floor(imageSize / 32) + MAX_PAX + (8 << 20);
}

function directoryInTheWay(path: string): ToolError {
  return new ToolError(`cannot write '${shownName(path, 400)}': a directory of that name is in the way; remove it or unbundle into another directory`, { code: 'IO_ERROR' });
}

/** The temporary name a member is written under until commit: one place, so it can follow the shared primitive. */
function temporaryPath(path: string): string {
  return tempPathBeside(path);
}


interface Member {
  name: string;
  path: string;
  /** The member's temporary file (none when it goes to a sink). */
  fh?: FileHandle;
  writer: { write(data: Buffer, offset: number): Promise<void> };
  realsize: number;
  mode: number;
  mtime: number;
  map: SparseMap;
  region: number;
  inRegion: number;
}

/** What the member header and its pax records say about a regular file, before its data. */
interface FileStart { header: TarHeader; name: string; parts: string[]; realsize: number; mtime: number; pad: number }

type State =
  | { kind: 'header' }
  | { kind: 'extension'; file: FileStart; map: SparseMap; stored: number }
  | { kind: 'meta'; header: TarHeader; buf: Buffer; filled: number; pad: number }
  | { kind: 'map10'; file: FileStart; parser: Sparse10MapParser; left: number }
  | { kind: 'data'; left: number; pad: number }
  | { kind: 'skip'; left: number }
  | { kind: 'end' };

const REFUSED_TYPES: Record<string, string> = {
  '1': 'hard link', '2': 'symbolic link', '3': 'character device', '4': 'block device', '6': 'FIFO',
  'M': 'multi-volume continuation', 'N': 'old GNU long-name record',
};

export class TarExtract extends Writable {
  private readonly directory: string;
  private readonly sink?: ImageSink;
  /** The file that went to the sink, once its data is complete. */
  private image?: { name: string; size: number; mode: number; mtime: number };
  private readonly imageSize: number;
  private readonly maxStream: number;
  private state: State = { kind: 'header' };
  private readonly block = Buffer.alloc(BLOCK);
  private blockLen = 0;
  private offset = 0; // stream offset, for error messages
  private longName?: string;
  private paxLocal?: PaxOverrides;
  private paxGlobal: PaxOverrides = {};
  private member?: Member;
  /** Bytes the files restored so far may take (their apparent sizes). */
  private restored = 0;
  private entries = 0;
  private readonly temps: { tmp: string; path: string; name: string; size: number }[] = [];
  /** Final paths renamed by a commit() that then failed: removed by the rollback. */
  private readonly committed: string[] = [];
  /** Member names already extracted (a name twice is refused). */
  private readonly claimed = new Set<string>();
  /** Directories under the destination known to be real directories (not symlinks). */
  private readonly verified = new Set<string>();
  /** Directories this extraction created, and the mode and mtime their members ask for. */
  private readonly createdDirs: string[] = [];
  private readonly dirModes = new Map<string, { mode: number; mtime: number }>();
  private buffers?: Buffer[];
  private busy: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private ended = false;

  constructor(opts: TarExtractOptions) {
    super({ highWaterMark: 8 << 20 });
    if (!Number.isSafeInteger(opts.imageSize) || opts.imageSize < 0) throw new RangeError(`invalid image size: ${opts.imageSize}`);
    if ((opts.directory === undefined) === (opts.sink === undefined)) throw new TypeError('TarExtract needs a directory or a sink, not both');
    this.directory = resolve(opts.directory ?? '.');
    this.sink = opts.sink;
    this.imageSize = opts.imageSize;
    this.maxStream = maxTarBytes(opts.imageSize);
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
      if (this.sink && !this.image) return cb(new ToolError('the tar stream holds no file: there is no image to write', { code: 'TAR_INVALID' }));
      this.ended = true;
      cb();
    } else {
      const what = this.member ? `in member '${shownName(this.member.name)}'` : 'in a header';
      cb(new TarFormatError(`tar stream is truncated (ends ${what} at byte ${this.offset}); the bundle is incomplete or corrupt`));
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.stopped = true;
    cb(err);
  }

  /**
   * Gives every extracted file its final name and applies the modes and mtimes of the directories this extraction
   * created; only after all checks passed. All or none: if any step fails, what was committed is removed again.
   */
  async commit(): Promise<ExtractedFile[]> {
    if (!this.ended) throw new ToolError('tar extraction is incomplete: commit() called before the tar stream ended');
    if (this.sink) return this.commitSink(this.sink, this.image!);
    try {
      // A directory in the way would fail its rename only after earlier files were renamed: look first.
      for (const t of this.temps) {
        const st = await lstat(t.path).catch(() => undefined);
        if (st?.isDirectory()) throw directoryInTheWay(t.path);
      }
      for (const t of this.temps) {
        await rename(t.tmp, t.path).catch((err: unknown) => { throw ioError(err, t.path, 'write'); });
        this.committed.push(t.path);
      }
      for (const [path, d] of [...this.dirModes].reverse()) {
        await chmod(path, d.mode & 0o777).catch((err: unknown) => { throw ioError(err, path, 'set the mode of'); });
        await utimes(path, Date.now() / 1000, d.mtime).catch((err: unknown) => { throw ioError(err, path, 'set the time of'); });
      }
    } catch (err) {
      await this.abort();
      throw err;
    }
    const out = this.temps.splice(0).map((t) => ({ name: t.name, path: t.path, size: t.size }));
    this.committed.length = 0;
    this.createdDirs.length = 0;
    this.dirModes.clear();
    return out;
  }

  private async commitSink(sink: ImageSink, image: NonNullable<TarExtract['image']>): Promise<ExtractedFile[]> {
    try {
      await sink.finish(image.size, { mode: image.mode, mtime: image.mtime });
    } catch (err) {
      await this.abort();
      throw err;
    }
    return [{ name: image.name, path: sink.name, size: image.size }];
  }

  /**
   * Removes everything this extraction wrote: temporary files, files a failed commit() had renamed, and the
   * directories it created (if empty). Safe to call at any time, also more than once.
   */
  async abort(): Promise<void> {
    this.stopped = true;
    await this.busy;
    const m = this.member;
    this.member = undefined;
    await m?.fh?.close().catch(() => undefined);
    await this.sink?.abort();
    for (const t of this.temps.splice(0)) await rm(t.tmp, { force: true }).catch(() => undefined);
    for (const path of this.committed.splice(0)) await rm(path, { force: true }).catch(() => undefined);
    for (const d of this.createdDirs.splice(0).sort((a, b) => b.length - a.length)) await rmdir(d).catch(() => undefined);
    this.dirModes.clear();
  }

  // ------------------------------------------------------------------------------------------------------ parsing

  private async consume(chunk: Buffer): Promise<void> {
    if (this.offset + chunk.length > this.maxStream) {
      throw this.corrupt(`the tar stream is longer than a ${this.imageSize}-byte image needs (the manifest's <size>); refusing it`);
    }
    let p = 0;
    while (p < chunk.length) {
      if (this.stopped) throw new ToolError('tar extraction was aborted', { code: 'INTERRUPTED' });
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
          const n = Math.min(s.buf.length - s.filled, avail);
          chunk.copy(s.buf, s.filled, p, p + n);
          s.filled += n;
          p += n;
          this.offset += n;
          if (s.filled === s.buf.length) {
            this.onMeta(s.header, s.buf);
            this.state = s.pad > 0 ? { kind: 'skip', left: s.pad } : { kind: 'header' };
          }
          break;
        }
        case 'map10': {
          const { used, complete } = s.parser.feed(chunk.subarray(p, p + Math.min(avail, s.left)));
          p += used;
          this.offset += used;
          s.left -= used;
          if (complete) {
            s.parser.map.finish(s.file.realsize, s.left);
            await this.startFile(s.file, s.parser.map, s.left);
          } else if (s.left === 0) {
            throw this.corrupt(`GNU sparse 1.0 map of '${shownName(s.file.name)}' is longer than the member`);
          }
          break;
        }
        case 'data': {
          const m = this.member!;
          const len = m.map.size(m.region);
          const n = Math.min(avail, len - m.inRegion);
          await m.writer.write(chunk.subarray(p, p + n), m.map.offset(m.region) + m.inRegion).catch((err: unknown) => { throw ioError(err, m.path, 'write'); });
          p += n;
          this.offset += n;
          s.left -= n;
          m.inRegion += n;
          if (m.inRegion === len) {
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
    const at = this.offset - BLOCK;
    const h = decodeHeader(this.block, `tar header at byte ${at}`);
    if (!h) {
      this.state = { kind: 'end' };
      return;
    }
    const t = h.typeflag;
    if (t === 'L' || t === 'K' || t === 'x' || t === 'g') {
      const isPax = t === 'x' || t === 'g';
      if (h.size > (isPax ? MAX_PAX : MAX_LONG_NAME)) throw this.corrupt(`${isPax ? 'pax header' : 'long name'} of ${h.size} bytes is too large`);
      // One of each per member: records never pile up across headers.
      if ((t === 'x' && this.paxLocal) || (t === 'L' && this.longName !== undefined)) {
        throw this.corrupt(`a second ${t === 'x' ? 'pax extended header' : 'long name'} for the same member`);
      }
      if (h.size === 0) this.onMeta(h, Buffer.alloc(0));
      else this.state = { kind: 'meta', header: h, buf: Buffer.allocUnsafe(h.size), filled: 0, pad: blockPad(h.size) };
      return;
    }
    await this.onMember(h);
  }

  private onMeta(h: TarHeader, body: Buffer): void {
    const where = `pax header at byte ${this.offset - body.length - blockPad(body.length) - BLOCK}`;
    if (h.typeflag === 'L') this.longName = decodeLongName(body);
    else if (h.typeflag === 'x') this.paxLocal = readPax(body, where, { maxEntries: MAX_SPARSE_ENTRIES });
    else if (h.typeflag === 'g') Object.assign(this.paxGlobal, readPax(body, where, { global: true, maxEntries: 0 }));
  }

  private async onMember(h: TarHeader): Promise<void> {
    const local = this.paxLocal ?? {};
    const o: PaxOverrides = { ...this.paxGlobal, ...local, sparse: local.sparse };
    const name = o.path ?? this.longName ?? h.name;
    this.paxLocal = undefined;
    this.longName = undefined;
    const size = o.size ?? h.size;
    const t = h.typeflag;
    const pad = blockPad(size);
    const mtime = o.mtime ?? h.mtime;
    const skip = (): void => { this.state = size + pad === 0 ? { kind: 'header' } : { kind: 'skip', left: size + pad }; };
    if (t === 'V') return skip(); // a volume label
    // Old (v7) archives mark a directory only by the slash that ends its name, as GNU tar reads them.
    if (t === '5' || t === 'D' || ((t === '0' || t === '7') && name.endsWith('/'))) {
      if (this.sink) throw this.notOneImage(`holds a directory '${shownName(name)}'`);
      const parts = memberComponents(name);
      this.countEntry(name);
      if (parts.length > 0) {
        const path = await this.directoryAt(parts, name);
        if (this.createdDirs.includes(path)) this.dirModes.set(path, { mode: h.mode, mtime });
      }
      return skip();
    }
    if (REFUSED_TYPES[t]) {
      throw new ToolError(`tar member '${shownName(name)}' is a ${REFUSED_TYPES[t]}; only regular files and directories can be unbundled`, { code: 'TAR_INVALID' });
    }
    if (t !== '0' && t !== '7' && t !== 'S') {
      throw new ToolError(`tar member '${shownName(name)}' has unsupported type '${shownName(t)}'; only regular files and directories can be unbundled`, { code: 'TAR_INVALID' });
    }
    if (this.sink && this.claimed.size > 0) throw this.notOneImage(`holds a second file '${shownName(name)}' after '${shownName([...this.claimed][0]!)}'`);
    // The name is checked before anything is written for it (a sink writes no name, but is not told a hostile one).
    const parts = memberComponents(name);
    if (parts.length === 0) throw new ToolError(`tar member '${shownName(name)}' has no file name; refusing to extract it`, { code: 'UNSAFE_NAME' });
    const key = parts.join('/');
    if (this.claimed.has(key)) throw this.corrupt(`tar member '${shownName(name)}' appears twice`);
    this.claimed.add(key);
    this.countEntry(name);

    const where = `tar member '${shownName(name)}'`;
    const realsize = o.sparse?.realsize ?? h.sparse?.realsize ?? size;
    if (o.sparse && h.sparse) throw this.corrupt(`tar member '${shownName(name)}' has both a GNU and a pax sparse map`);
    this.reserve(name, realsize);
    const file: FileStart = { header: h, name, parts, realsize, mtime, pad };
    // Every map is bounded by what the member can hold: no more entries than stored bytes (plus the end entry).
    const maxEntries = Math.min(MAX_SPARSE_ENTRIES, size + 1);
    if (o.sparse?.dataMap) { // GNU 1.0: the map starts the member's data
      if (size === 0) throw this.corrupt(`GNU sparse 1.0 member '${shownName(name)}' has no map`);
      const parser = new Sparse10MapParser(where, { maxEntries, realsize, stored: size });
      this.state = { kind: 'map10', file, parser, left: size };
      return;
    }
    if (o.sparse) { // GNU 0.x: the map came in the pax header
      const map = o.sparse.map!;
      if (map.length > maxEntries) throw this.corrupt(`${where}: sparse map of ${map.length} entries is more than the member can hold`);
      await this.startFile(file, map.finish(realsize, size), size);
      return;
    }
    const map = new SparseMap(where, { maxEntries, realsize, stored: size });
    if (!h.sparse) map.push(0, size);
    else for (const r of h.sparse.map) map.push(r.offset, r.length);
    if (h.sparse?.isextended) {
      this.state = { kind: 'extension', file, map, stored: size };
      return;
    }
    await this.startFile(file, map.finish(realsize, size), size);
  }

  private async onExtension(s: Extract<State, { kind: 'extension' }>): Promise<void> {
    const ext = decodeSparseExtension(this.block, `tar sparse header at byte ${this.offset - BLOCK}`);
    for (const r of ext.map) s.map.push(r.offset, r.length);
    if (ext.isextended) return;
    this.state = { kind: 'header' };
    await this.startFile(s.file, s.map.finish(s.file.realsize, s.stored), s.stored);
  }

  /** Claims `realsize` bytes of the manifest's image size for a member. */
  private reserve(name: string, realsize: number): void {
    if (realsize > this.imageSize - this.restored) {
      throw this.corrupt(`tar member '${shownName(name)}' is ${realsize} bytes, ` +
        `${this.restored > 0 ? `with the ${this.restored} bytes before it ` : ''}more than the ${this.imageSize}-byte image the manifest states`);
    }
    this.restored += realsize;
  }

  private countEntry(name: string): void {
    if (++this.entries > MAX_ENTRIES) throw this.corrupt(`more than ${MAX_ENTRIES} files and directories (at '${shownName(name)}'); an image bundle holds one image`);
  }

  private notOneImage(what: string): ToolError {
    return this.corrupt(`the bundle ${what}; writing the image to one file, device or stdout needs exactly one regular file: unbundle into a directory (-d) instead`);
  }

  /** Allocated at the first file, not per member: a stream of many small members must not churn 8 MiB each. */
  private writeBuffers(): Buffer[] {
    this.buffers ??= writeBuffers();
    return this.buffers;
  }

  /** Opens the member's temporary file (or takes the sink); `left` is its remaining stored bytes, which the map places. */
  private async startFile(f: FileStart, map: SparseMap, left: number): Promise<void> {
    if (this.sink) {
      this.member = {
        name: f.parts.join('/'), path: this.sink.name, writer: this.sink, realsize: f.realsize, mode: f.header.mode, mtime: f.mtime, map, region: 0, inRegion: 0,
      };
      if (left === 0) await this.finishFile(f.pad);
      else this.state = { kind: 'data', left, pad: f.pad };
      return;
    }
    const dir = await this.directoryAt(f.parts.slice(0, -1), f.name);
    const path = join(dir, f.parts[f.parts.length - 1]);
    const st = await lstat(path).catch(() => undefined);
    if (st?.isDirectory()) throw directoryInTheWay(path);
    const tmp = temporaryPath(path);
    // O_EXCL and O_NOFOLLOW: a name that appeared in the meantime is never followed or truncated.
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const fh = await open(tmp, flags, 0o600).catch((err: unknown) => { throw ioError(err, tmp, 'create'); });
    this.temps.push({ tmp, path, name: f.parts.join('/'), size: f.realsize });
    this.member = {
      name: f.parts.join('/'), path, fh, writer: new BlockWriter(fileRangeWriter(fh), { zeros: 'skip', buffers: this.writeBuffers() }), realsize: f.realsize, mode: f.header.mode,
      mtime: f.mtime, map, region: 0, inRegion: 0,
    };
    if (left === 0) await this.finishFile(f.pad);
    else this.state = { kind: 'data', left, pad: f.pad };
  }

  private async finishFile(pad: number): Promise<void> {
    const m = this.member!;
    this.state = pad === 0 ? { kind: 'header' } : { kind: 'skip', left: pad };
    if (!m.fh) { // the sink's: finished by commit(), once the stream's digest is known
      this.image = { name: m.name, size: m.realsize, mode: m.mode, mtime: m.mtime };
      this.member = undefined;
      return;
    }
    try {
      await (m.writer as BlockWriter).finish();
      await m.fh.truncate(m.realsize);
      // Permission bits only: a hostile archive gets no set-user-ID file out of a run as root.
      await m.fh.chmod(m.mode & 0o777);
      await m.fh.utimes(Date.now() / 1000, m.mtime);
      this.member = undefined;
      await m.fh.close();
    } catch (err) {
      throw ioError(err, m.path, 'write');
    }
  }

  /**
   * The directory `parts` names under the destination, creating what is missing (and remembering it, for abort).
   * An existing component must be a real directory: a symlink is never followed, wherever it points.
   */
  private async directoryAt(parts: string[], member: string): Promise<string> {
    let path = this.directory;
    for (const c of parts) {
      path = join(path, c);
      if (this.verified.has(path)) continue;
      let st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw ioError(err, path, 'look up');
      });
      if (!st) {
        this.countEntry(member);
        const made = await mkdir(path).then(() => true, (err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') return false;
          throw ioError(err, path, 'create the directory');
        });
        if (made) this.createdDirs.push(path);
        else st = await lstat(path);
      }
      if (st?.isSymbolicLink()) {
        throw new ToolError(`tar member '${shownName(member)}' would be written through '${shownName(path, 400)}', a symbolic link in the destination; ` +
          'refusing to follow it (remove the link or unbundle into another directory)', { code: 'UNSAFE_NAME' });
      }
      if (st && !st.isDirectory()) {
        throw new ToolError(`tar member '${shownName(member)}' needs '${shownName(path, 400)}' to be a directory, but a file of that name is in the destination`, { code: 'UNSAFE_NAME' });
      }
      this.verified.add(path);
    }
    return path;
  }
}

/**
 * The components of a member name under the target directory (none for the directory itself): `.` and empty
 * components are dropped, and every other one must be a plain file name (the rule part and image names follow),
 * so that no name can reach outside the directory, hide there, or carry control characters.
 */
export function memberComponents(name: string): string[] {
  const refuse = (why: string) => new ToolError(`tar member '${shownName(name)}' ${why}; refusing to extract it (nothing was written for it)`, { code: 'UNSAFE_NAME' });
  if (Buffer.byteLength(name) > PATH_MAX) throw refuse(`has a name longer than ${PATH_MAX} bytes`);
  if (name.startsWith('/')) throw refuse('has an absolute name');
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw refuse("has a '..' component");
  for (const c of parts) {
    if (!isPlainFileName(c)) throw refuse(`has a component '${shownName(c)}' that is not a plain file name (no control characters or '\\', not starting with '.')`);
    if (Buffer.byteLength(c) > NAME_MAX) throw refuse(`has a component longer than ${NAME_MAX} bytes`);
  }
  return parts;
}
