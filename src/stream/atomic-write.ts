// The one way outputs are written: under a temporary name beside the final one, then committed (renamed into place)
// or aborted (removed), a group of files at a time. Temporary names carry the owner's PID so that a later run can
// recognise and sweep what a killed run left. Open groups are registered, so that a caller that catches a signal can
// abort them all; this module itself installs no signal handler and never exits the process.
import { randomBytes } from 'node:crypto';
import { constants, rmSync, unlinkSync } from 'node:fs';
import { copyFile, link, lstat, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ToolError } from '../errors.js';
import { ioError } from '../io-errors.js';

const TAG = 'amitools';
// `.NAME.amitools-PID-RAND.tmp`; NAME is empty when it was too long to fit.
const TEMP_NAME = new RegExp(`^\\..*\\.${TAG}-([1-9][0-9]*)-[0-9a-f]{8}\\.tmp$`);

/** A hidden, unique temporary name beside `path`, recognisable as ours and naming this process. */
export function tempPathBeside(path: string): string {
  const base = basename(path);
  // A file name may have 255 bytes: a long name is left out of its temporary name rather than overflow it (≤ 231).
  const shown = Buffer.byteLength(base) > 200 ? '' : base;
  return join(dirname(path), `.${shown}.${TAG}-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
}

/** The PID that owns a temporary file name of ours, or undefined for any other name. */
export function temporaryOwner(name: string): number | undefined {
  const m = TEMP_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Removes, from `directory` (not below it), the temporary files of ours whose owning process is gone: what a run
 * killed outright (SIGKILL, power loss) left. Other names, other file types and live owners' files are not touched.
 */
export async function sweepStaleTemporaries(directory: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return []; // the command reports an unusable directory in its own words
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = temporaryOwner(name);
    if (pid === undefined || pid === process.pid || isAlive(pid)) continue;
    const path = join(directory, name);
    try {
      if (!(await lstat(path)).isFile()) continue;
      await unlink(path);
      removed.push(path);
    } catch { /* gone meanwhile, or not ours to remove */ }
  }
  return removed;
}

/** One staged output: written at `temp`, given the name `final` on commit. */
export interface StagedFile {
  readonly temp: string;
  /** May be set until commit (a part's final name depends on how many parts there are). */
  final: string;
}

export interface StageOptions {
  /** Permission bits of the new file (default 0o644, less the umask). */
  mode?: number;
  /** Set `mode` exactly, whatever the umask. */
  exactMode?: boolean;
  /** Commit fails if `final` exists, instead of replacing it. */
  exclusive?: boolean;
}

interface Entry extends StagedFile {
  exclusive: boolean;
  fh?: FileHandle;
  committed: boolean;
}

type State = 'open' | 'committing' | 'committed' | 'aborted';

const openGroups = new Set<StagedFiles>();

/**
 * A group of outputs written under temporary names and then committed together (renamed in the order they were
 * staged, so stage the manifest last) or aborted together (every temporary removed). If a commit fails part-way,
 * the names already given are taken back: nothing is left under a final name unless the whole group made it.
 */
export class StagedFiles {
  private readonly entries: Entry[] = [];
  private readonly scratch: string[] = [];
  private readonly pending = new Set<Promise<unknown>>();
  private state: State = 'open';
  private abortRequested = false;
  private settling: Promise<void> | undefined;
  private readonly detach: () => void;

  /** With `signal`, the group aborts itself when the signal fires. */
  constructor(opts: { signal?: AbortSignal } = {}) {
    openGroups.add(this);
    const signal = opts.signal;
    if (signal) {
      const onAbort = () => { void this.abort(); };
      signal.addEventListener('abort', onAbort, { once: true });
      this.detach = () => signal.removeEventListener('abort', onAbort);
      if (signal.aborted) onAbort();
    } else {
      this.detach = () => {};
    }
  }

  /** Reserves a temporary name for `final` (the caller creates the file there). */
  reserve(final: string, opts: StageOptions = {}): StagedFile {
    this.assertOpen();
    const entry: Entry = { temp: tempPathBeside(final), final, exclusive: opts.exclusive ?? false, committed: false };
    this.entries.push(entry);
    return entry;
  }

  /** Creates the temporary file for `final` (exclusively) and opens it for writing; the group closes it on abort. */
  async create(final: string, opts: StageOptions = {}): Promise<{ file: StagedFile; fh: FileHandle }> {
    const entry = this.reserve(final, opts) as Entry;
    const mode = opts.mode ?? 0o644;
    const opening = this.track(open(entry.temp, 'wx', mode));
    const fh = await opening;
    entry.fh = fh;
    if (this.state !== 'open') {
      await fh.close().catch(() => {});
      await rm(entry.temp, { force: true });
      this.assertOpen();
    }
    if (opts.exactMode) await this.track(fh.chmod(mode));
    return { file: entry, fh };
  }

  /** Writes a whole file under a temporary name for `final`. */
  async write(final: string, data: string | Buffer, opts: StageOptions = {}): Promise<StagedFile> {
    const { file, fh } = await this.create(final, opts);
    try {
      await this.track(fh.writeFile(data)).catch((err) => { throw ioError(err, final, 'write'); });
    } finally {
      await fh.close();
    }
    return file;
  }

  /** Removes one staged file now (e.g. a download attempt that failed and will be retried). */
  async discard(file: StagedFile): Promise<void> {
    const i = this.entries.indexOf(file as Entry);
    if (i < 0) return;
    const [entry] = this.entries.splice(i, 1);
    await entry.fh?.close().catch(() => {});
    await rm(entry.temp, { force: true });
  }

  /** A scratch directory of the same job: removed, with what is in it, when the group commits or aborts. */
  addScratch(path: string): void {
    this.assertOpen();
    this.scratch.push(path);
  }

  /** Gives every staged file its final name, in order; on any failure, takes back the names given and removes all. */
  async commit(): Promise<void> {
    this.assertOpen();
    this.state = 'committing';
    const run = (async () => {
      try {
        await Promise.allSettled(this.pending);
        const finals = new Set<string>();
        for (const e of this.entries) {
          if (finals.has(e.final)) throw new ToolError(`two outputs would both be named ${e.final}; nothing was written`, { code: 'UNSAFE_NAME' });
          finals.add(e.final);
        }
        for (const e of this.entries) await e.fh?.close();
        for (const e of this.entries) {
          if (this.abortRequested) throw new ToolError('interrupted while moving files into place; none was kept', { code: 'INTERRUPTED' });
          await place(e);
          e.committed = true;
        }
      } catch (err) {
        await this.removeAll();
        this.state = 'aborted';
        throw err;
      } finally {
        await this.removeScratch();
        this.close();
      }
      this.state = 'committed';
    })();
    this.settling = run.catch(() => {});
    return run;
  }

  /** Removes every temporary file (and, during a commit, every final name already given). Safe to call twice. */
  abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return this.settling ?? Promise.resolve();
    if (this.state === 'committing') {
      this.abortRequested = true;
      return this.settling!;
    }
    this.state = 'aborted';
    this.settling = (async () => {
      // A file being created now would appear after its removal: wait for creations in flight.
      await Promise.allSettled(this.pending);
      await this.removeAll();
      await this.removeScratch();
      this.close();
    })();
    return this.settling;
  }

  /** Last resort for a process about to exit: removes what `abort()` would, synchronously. */
  removeSync(): void {
    for (const e of this.entries) {
      for (const p of e.committed ? [e.final] : [e.temp]) {
        try { unlinkSync(p); } catch { /* already gone */ }
      }
    }
    for (const d of this.scratch) rmSync(d, { recursive: true, force: true });
  }

  private async removeAll(): Promise<void> {
    for (const e of this.entries) {
      await e.fh?.close().catch(() => {});
      await rm(e.committed ? e.final : e.temp, { force: true });
      e.committed = false;
    }
  }

  private async removeScratch(): Promise<void> {
    for (const d of this.scratch.splice(0)) await rm(d, { recursive: true, force: true });
  }

  private close(): void {
    this.detach();
    openGroups.delete(this);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    const done = () => { this.pending.delete(p); };
    p.then(done, done);
    return p;
  }

  private assertOpen(): void {
    if (this.state !== 'open') {
      throw new ToolError(this.state === 'aborted' ? 'output was aborted and removed' : `staged output is already ${this.state}`, { code: this.state === 'aborted' ? 'INTERRUPTED' : 'FAILED' });
    }
  }
}


/** Moves a finished temporary file to its final name (exclusively: by link, failing if the name exists). */
async function place(e: Entry): Promise<void> {
  try {
    if (!e.exclusive) {
      await rename(e.temp, e.final);
      return;
    }
    try {
      await link(e.temp, e.final);
    } catch (err) {
      // A filesystem without hard links: an exclusive copy is the next best thing.
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      await copyFile(e.temp, e.final, constants.COPYFILE_EXCL);
    }
    await unlink(e.temp);
  } catch (err) {
    const e2 = ioError(err, e.final, 'create');
    e2.message += '; nothing was left under a final name';
    throw e2;
  }
}

/** Writes one file under a temporary name and renames it into place. */
export async function writeFileAtomically(path: string, data: string | Buffer, opts: StageOptions = {}): Promise<void> {
  const group = new StagedFiles();
  try {
    await group.write(path, data, opts);
    await group.commit();
  } catch (err) {
    await group.abort();
    throw err;
  }
}

/** Aborts every open group of this process (what a signal handler calls); resolves when their files are removed. */
export async function abortAllStaged(): Promise<void> {
  await Promise.all([...openGroups].map((g) => g.abort()));
}

/** Synchronously removes the files of every open group: for a process that must exit now. */
export function removeAllStagedSync(): void {
  for (const g of openGroups) g.removeSync();
}
