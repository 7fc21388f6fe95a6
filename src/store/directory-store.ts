import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.js';
import { isPlainFileName } from '../format/part-name.js';
import { StagedFiles, sweepStaleTemporaries, type StagedFile } from '../stream/atomic-write.js';
import { MAX_MANIFEST_BYTES, collectExactly, provisionalName, type PartStore, type PartSums, type PartWriter, type WriterOptions } from './part-store.js';

/** A bundle in a local directory. */
export class DirectoryStore implements PartStore {
  readonly rereadOnMismatch = false;
  /** Stops writes: what was written under temporary names is removed. */
  readonly signal: AbortSignal | undefined;

  constructor(readonly directory: string, o: { signal?: AbortSignal } = {}) {
    this.signal = o.signal;
  }

  get location(): string {
    return this.directory;
  }

  private path(name: string): string {
    if (!isPlainFileName(name)) throw new ToolError(`refusing the name '${name}': not a plain file name`, { code: 'UNSAFE_NAME' });
    return join(this.directory, name);
  }

  async readManifest(name: string): Promise<Buffer> {
    return readRegularFile(this.path(name), { max: MAX_MANIFEST_BYTES, what: 'manifest' });
  }

  async readPart(name: string, size: number, onBytes?: (n: number) => void): Promise<Buffer> {
    return readRegularFile(this.path(name), { exact: size, what: 'part', onBytes });
  }

  createWriter(o: WriterOptions): PartWriter {
    return new DirectoryWriter(this, o);
  }

  /** @internal the writer's path for a name (checked). */
  pathOf(name: string): string {
    return this.path(name);
  }
}

/**
 * Reads a file that must be a regular file (after following a symlink): opened without blocking, so a FIFO cannot
 * hang us, and read no further than the bound allows.
 */
export async function readRegularFile(path: string, o: { exact?: number; max?: number; what: string; onBytes?: (n: number) => void }): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ToolError(`cannot read ${o.what} ${path}: ${code === 'ENOENT' ? 'it does not exist' : code ?? (err as Error).message}`, { cause: err, code: 'IO_ERROR' });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ToolError(`${o.what} ${path} is not a regular file; a bundle's files must be plain files`, { code: 'IO_ERROR' });
    const stream = fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false });
    if (o.exact !== undefined) return await collectExactly(stream, o.exact, `${o.what} ${path}`, o.onBytes);
    const limit = o.max ?? MAX_MANIFEST_BYTES;
    if (st.size > limit) throw new ToolError(`${o.what} ${path} is over ${limit} bytes: not a ${o.what}`, { code: 'MANIFEST_INVALID' });
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) throw new ToolError(`${o.what} ${path} is over ${limit} bytes: not a ${o.what}`, { code: 'MANIFEST_INVALID' });
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}

/** Parts and manifest as one staged group: given their names together, the manifest last, or all removed. */
class DirectoryWriter implements PartWriter {
  private readonly staged: StagedFiles;
  private readonly files = new Map<number, StagedFile>();
  private swept: Promise<unknown> | undefined;

  constructor(private readonly store: DirectoryStore, private readonly naming: WriterOptions) {
    this.staged = new StagedFiles({ signal: store.signal });
  }

  async putPart(index: number, data: Buffer, _sums: PartSums): Promise<void> {
    // Temporaries a killed run of ours left here go first (only ours: named with a PID that is gone).
    await (this.swept ??= sweepStaleTemporaries(this.store.directory));
    this.files.set(index, await this.staged.write(this.store.pathOf(provisionalName(this.naming, index)), data));
  }

  async commit(names: string[], manifest?: { name: string; data: Buffer }): Promise<void> {
    for (const [index, file] of this.files) file.final = this.store.pathOf(names[index]!);
    if (manifest) await this.staged.write(this.store.pathOf(manifest.name), manifest.data);
    await this.staged.commit();
  }

  abort(): Promise<void> {
    return this.staged.abort();
  }
}
