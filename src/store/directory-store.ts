import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.js';
import { isPlainFileName } from '../format/part-name.js';
import { openRegularFile, readManifestBytes, type RegularFile } from './regular-file.js';
import { StagedFiles, sweepStaleTemporaries, type StagedFile } from '../stream/atomic-write.js';
import { partLengthError, provisionalName, type PartStore, type PartSums, type PartWriter, type WriterOptions } from './part-store.js';

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
    return readManifestBytes(this.path(name));
  }

  async readPart(name: string, size: number, onBytes?: (n: number) => void, into?: Buffer): Promise<Buffer> {
    const file = await this.openPart(name, size);
    try {
      return await readExactly(file.handle, size, `part ${this.path(name)}`, onBytes, into);
    } finally {
      await file.handle.close();
    }
  }

  async precheck(parts: { name: string; size: number }[]): Promise<void> {
    for (const p of parts) await (await this.openPart(p.name, p.size)).handle.close();
  }

  /** A part: a regular file (a FIFO, device or socket is refused at once) of exactly the size the manifest gives it. */
  private async openPart(name: string, size: number): Promise<RegularFile> {
    const path = this.path(name);
    const file = await openRegularFile(path, 'part');
    if (file.size !== size) {
      await file.handle.close();
      throw partLengthError(`part ${path}`, `${file.size} bytes long`, size);
    }
    return file;
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
 * Exactly `size` bytes from the start of a file, read straight into `into` (or a new buffer) in 1 MiB reads; a file
 * that turns out shorter or longer than `size` (it changed since it was opened) is refused.
 */
async function readExactly(handle: FileHandle, size: number, what: string, onBytes?: (n: number) => void, into?: Buffer): Promise<Buffer> {
  if (into && into.length < size) throw new RangeError(`a ${into.length}-byte buffer cannot hold ${what} (${size} bytes)`);
  const out = into ? into.subarray(0, size) : Buffer.allocUnsafe(size);
  for (let n = 0; n < size; ) {
    const { bytesRead } = await handle.read(out, n, Math.min(1 << 20, size - n), n);
    if (bytesRead === 0) throw partLengthError(what, `${n} bytes long`, size);
    n += bytesRead;
    onBytes?.(bytesRead);
  }
  if ((await handle.read(Buffer.alloc(1), 0, 1, size)).bytesRead > 0) throw partLengthError(what, `over ${size} bytes long`, size);
  return out;
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

  async abort(): Promise<undefined> {
    await this.staged.abort();
    return undefined;
  }
}
