import { createHash, type Hash } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ioError } from '../io-errors.js';
import { tempPathBeside } from './atomic-write.js';
import { PART_SIZE, partName } from '../format/part-name.js';

export interface WrittenPart { filename: string; path: string; size: number; digest: string }

interface OpenPart { fh: FileHandle; tempPath: string; size: number; hash: Hash }

/**
 * Cuts a byte stream into PART_SIZE parts in a directory, taking each part's SHA-1 as it is written.
 * A part's final name depends on how many parts there are (the digit rule), known only at the end:
 * parts are written under temporary names and renamed by finish().
 */
export class PartSink extends Writable {
  private current: OpenPart | undefined;
  private readonly done: { tempPath: string; size: number; digest: string }[] = [];

  constructor(private readonly directory: string, private readonly prefix: string) {
    super({ highWaterMark: 1 << 20 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.append(chunk).then(() => cb(), cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.append(Buffer.concat(chunks.map((c) => c.chunk))).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.closeCurrent().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const fh = this.current?.fh;
    this.current = undefined;
    (fh ? fh.close() : Promise.resolve()).then(() => cb(err), () => cb(err));
  }

  private async append(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const part = this.current ?? (this.current = await this.openNext());
      const n = Math.min(PART_SIZE - part.size, buf.length - off);
      const slice = buf.subarray(off, off + n);
      await part.fh.write(slice, 0, slice.length, part.size).catch((err: unknown) => {
        throw ioError(err, join(this.directory, `${this.prefix}.part.${this.done.length}`), 'write'); // not the temporary name
      });
      part.hash.update(slice);
      part.size += n;
      off += n;
      if (part.size === PART_SIZE) await this.closeCurrent();
    }
  }

  private async openNext(): Promise<OpenPart> {
    const tempPath = tempPathBeside(join(this.directory, `${this.prefix}.part.${this.done.length}`));
    return { fh: await open(tempPath, 'w', 0o644), tempPath, size: 0, hash: createHash('sha1') };
  }

  private async closeCurrent(): Promise<void> {
    const part = this.current;
    if (!part) return;
    this.current = undefined;
    await part.fh.close();
    this.done.push({ tempPath: part.tempPath, size: part.size, digest: part.hash.digest('hex') });
  }

  /** Renames the parts to their final names once the stream has finished; returns them in order. */
  async finish(): Promise<WrittenPart[]> {
    const count = this.done.length;
    const parts: WrittenPart[] = [];
    for (const [i, p] of this.done.entries()) {
      const filename = partName(this.prefix, i, count);
      const path = join(this.directory, filename);
      await rename(p.tempPath, path);
      parts.push({ filename, path, size: p.size, digest: p.digest });
    }
    return parts;
  }

  /** Removes every part written so far (after a failure). */
  async abort(): Promise<void> {
    if (this.current) {
      await this.current.fh.close().catch(() => {});
      this.done.push({ tempPath: this.current.tempPath, size: 0, digest: '' });
      this.current = undefined;
    }
    await Promise.all(this.done.map((p) => rm(p.tempPath, { force: true })));
  }
}
