import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { StagedFile, StagedFiles } from './atomic-write.js';
import { PART_SIZE, partName } from '../format/part-name.js';

export interface WrittenPart { filename: string; path: string; size: number; digest: string }

interface OpenPart { fh: FileHandle; file: StagedFile; size: number; hash: Hash }

/**
 * Cuts a byte stream into PART_SIZE parts in a directory, taking each part's SHA-1 as it is written.
 * Parts are staged files of the caller's group (removed with it on failure); a part's final name depends on how
 * many parts there are (the digit rule), known only at the end: parts() names them, the group's commit renames them.
 */
export class PartSink extends Writable {
  private current: OpenPart | undefined;
  private readonly done: { file: StagedFile; size: number; digest: string }[] = [];

  constructor(private readonly staged: StagedFiles, private readonly directory: string, private readonly prefix: string) {
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
    // The file itself stays with the group, which removes it on abort.
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
      await part.fh.write(slice, 0, slice.length, part.size);
      part.hash.update(slice);
      part.size += n;
      off += n;
      if (part.size === PART_SIZE) await this.closeCurrent();
    }
  }

  private async openNext(): Promise<OpenPart> {
    const { file, fh } = await this.staged.create(join(this.directory, `${this.prefix}.part.${this.done.length}`));
    return { fh, file, size: 0, hash: createHash('sha1') };
  }

  private async closeCurrent(): Promise<void> {
    const part = this.current;
    if (!part) return;
    this.current = undefined;
    await part.fh.close();
    this.done.push({ file: part.file, size: part.size, digest: part.hash.digest('hex') });
  }

  /** Once the stream has finished: gives each part its final name (taking effect at the group's commit), in order. */
  parts(): WrittenPart[] {
    const count = this.done.length;
    return this.done.map((p, i) => {
      const filename = partName(this.prefix, i, count);
      p.file.final = join(this.directory, filename);
      return { filename, path: p.file.final, size: p.size, digest: p.digest };
    });
  }
}
