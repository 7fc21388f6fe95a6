import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  StagedFiles, abortAllStaged, removeAllStagedSync, sweepStaleTemporaries, tempPathBeside, temporaryOwner, writeFileAtomically,
} from '../../src/stream/atomic-write.js';
import { DirectoryStore } from '../../src/store/directory-store.js';
import { AmiToolsError } from '../../src/errors.js';

const MiB = 1024 * 1024;
let root: string;
let n = 0;
beforeAll(() => { root = mkdtempSync(join(tmpdir(), 'amitools-staged-')); });
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fresh = () => { const d = join(root, `d${n++}`); mkdirSync(d); return d; };
const ls = (d: string) => readdirSync(d).sort();

/** The PID of a process that has exited (and so is not alive). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('temporary names', () => {
  it('are hidden, beside the target, name this process and are recognised', () => {
    const t = tempPathBeside('/x/dir/image.part.3');
    expect(t.startsWith('/x/dir/.image.part.3.amitools-')).toBe(true);
    expect(basename(t)).toMatch(new RegExp(`^\\.image\\.part\\.3\\.amitools-${process.pid}-[0-9a-f]{8}\\.tmp$`));
    expect(temporaryOwner(basename(t))).toBe(process.pid);
    for (const other of ['image.part.3', '.image.part.3.tmp', '.x.amitools-12-abc.tmp', '.x.amitools-0-deadbeef.tmp', '.x.amitools-12-deadbeef.tmp.bak']) {
      expect(temporaryOwner(other), other).toBeUndefined();
    }
  });

  it('stay within the 255-byte name limit for the longest file name', () => {
    const long = 'é'.repeat(127); // 254 bytes
    const t = basename(tempPathBeside(join('/d', long)));
    expect(Buffer.byteLength(t)).toBeLessThanOrEqual(255);
    expect(temporaryOwner(t)).toBe(process.pid);
    const at200 = 'a'.repeat(200);
    expect(Buffer.byteLength(basename(tempPathBeside(join('/d', at200))))).toBeLessThanOrEqual(255);
  });
});

describe('sweepStaleTemporaries', () => {
  it("removes only our pattern's regular files whose owner is gone", async () => {
    const d = fresh();
    const dead = deadPid();
    const stale = `.img.part.0.amitools-${dead}-0123abcd.tmp`;
    const staleLong = `..amitools-${dead}-0123abcd.tmp`;
    const mine = basename(tempPathBeside(join(d, 'img')));
    const init = `.img.amitools-1-0123abcd.tmp`; // PID 1 is alive
    const dirLike = `.sub.amitools-${dead}-0123abcd.tmp`;
    const others = ['img.part.0', `.img.${dead}.0123abcd.tmp`, '.bashrc', `img.amitools-${dead}-0123abcd.tmp`];
    for (const f of [stale, staleLong, mine, init, ...others]) writeFileSync(join(d, f), 'x');
    mkdirSync(join(d, dirLike));
    const removed = await sweepStaleTemporaries(d);
    expect(removed.map((p) => basename(p)).sort()).toEqual([staleLong, stale].sort());
    expect(ls(d)).toEqual([init, mine, dirLike, ...others].sort());
  });

  it('is quiet about a directory it cannot read', async () => {
    expect(await sweepStaleTemporaries(join(root, 'missing'))).toEqual([]);
  });
});

describe('StagedFiles', () => {
  it('commits in the order staged, under the final names, and leaves no temporary', async () => {
    const d = fresh();
    const g = new StagedFiles();
    const { file, fh } = await g.create(join(d, 'a.part.0'));
    await fh.writeFile('part');
    await fh.close();
    file.final = join(d, 'a.part.00'); // named only at the end
    await g.write(join(d, 'a.manifest.xml'), '<manifest/>');
    expect(ls(d).every((f) => temporaryOwner(f) === process.pid)).toBe(true);
    await g.commit();
    expect(ls(d)).toEqual(['a.manifest.xml', 'a.part.00']);
    expect(readFileSync(join(d, 'a.part.00'), 'utf8')).toBe('part');
    await g.abort(); // after a commit: nothing to undo
    expect(ls(d)).toEqual(['a.manifest.xml', 'a.part.00']);
  });

  it('takes back the names already given when a later rename fails (a directory in the way)', async () => {
    const d = fresh();
    mkdirSync(join(d, 'a.manifest.xml'));
    const g = new StagedFiles();
    await g.write(join(d, 'a.part.0'), 'p0');
    await g.write(join(d, 'a.part.1'), 'p1');
    await g.write(join(d, 'a.manifest.xml'), 'm');
    const err = await g.commit().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(AmiToolsError);
    expect((err as Error).message).toBe(`cannot create ${join(d, 'a.manifest.xml')}: a directory is in the way (EISDIR); move it away or choose another path; nothing was left under a final name`);
    expect(ls(d)).toEqual(['a.manifest.xml']);
    expect(ls(join(d, 'a.manifest.xml'))).toEqual([]);
  });

  it('aborts: every temporary removed, including one still being written', async () => {
    const d = fresh();
    const g = new StagedFiles();
    await g.write(join(d, 'x'), 'done');
    const { fh } = await g.create(join(d, 'y'));
    await fh.write(Buffer.alloc(MiB));
    await g.abort();
    expect(ls(d)).toEqual([]);
    await expect(g.create(join(d, 'z'))).rejects.toThrow(/aborted/);
    expect(ls(d)).toEqual([]);
  });

  it('waits for a creation in flight before removing', async () => {
    const d = fresh();
    const g = new StagedFiles();
    const creating = g.create(join(d, 'late'));
    const aborting = g.abort();
    await expect(creating).rejects.toThrow(/aborted/);
    await aborting;
    expect(ls(d)).toEqual([]);
  });

  it('refuses two outputs with one final name before renaming anything', async () => {
    const d = fresh();
    const g = new StagedFiles();
    await g.write(join(d, 'p'), '1');
    await g.write(join(d, 'q'), '2');
    await g.write(join(d, 'p'), '3');
    await expect(g.commit()).rejects.toThrow(/two outputs would both be named/);
    expect(ls(d)).toEqual([]);
  });

  it('exclusive: fails when the final name exists, keeping that file and leaving nothing else', async () => {
    const d = fresh();
    writeFileSync(join(d, 'm.bak'), 'old');
    const g = new StagedFiles();
    await g.write(join(d, 'm.bak'), 'new', { exclusive: true });
    await g.write(join(d, 'm'), 'manifest');
    const err = await g.commit().then(() => undefined, (e: Error) => e);
    expect((err?.cause as NodeJS.ErrnoException).code).toBe('EEXIST');
    expect(ls(d)).toEqual(['m.bak']);
    expect(readFileSync(join(d, 'm.bak'), 'utf8')).toBe('old');
  });

  it('sets an exact mode whatever the umask', async () => {
    const d = fresh();
    await writeFileAtomically(join(d, 'f'), 'x', { mode: 0o666, exactMode: true });
    expect(statSync(join(d, 'f')).mode & 0o777).toBe(0o666);
  });

  it('discards one file (a failed attempt) and keeps the rest', async () => {
    const d = fresh();
    const g = new StagedFiles();
    const bad = await g.write(join(d, 'p'), 'bad');
    await g.discard(bad);
    await g.write(join(d, 'p'), 'good');
    await g.commit();
    expect(ls(d)).toEqual(['p']);
    expect(readFileSync(join(d, 'p'), 'utf8')).toBe('good');
  });

  it('aborts itself when its signal fires, and removes its scratch directories', async () => {
    const d = fresh();
    const ac = new AbortController();
    const g = new StagedFiles({ signal: ac.signal });
    await g.write(join(d, 'f'), 'x');
    mkdirSync(join(d, '.scratch'));
    writeFileSync(join(d, '.scratch', 'inside'), 'x');
    g.addScratch(join(d, '.scratch'));
    ac.abort();
    await g.abort();
    expect(ls(d)).toEqual([]);
  });

  it('an interrupt during the commit stops it and removes everything', async () => {
    const d = fresh();
    const g = new StagedFiles();
    for (let i = 0; i < 5; i++) await g.write(join(d, `p${i}`), 'x');
    const committing = g.commit();
    const aborting = abortAllStaged();
    await expect(committing).rejects.toThrow(/interrupted while moving files into place/);
    await aborting;
    expect(ls(d)).toEqual([]);
  });

  it('the registry aborts every open group; the synchronous removal leaves nothing either', async () => {
    const d = fresh();
    const a = new StagedFiles();
    const b = new StagedFiles();
    await a.write(join(d, 'a'), 'x');
    await b.write(join(d, 'b'), 'x');
    await abortAllStaged();
    expect(ls(d)).toEqual([]);
    const c = new StagedFiles();
    await c.write(join(d, 'c'), 'x');
    await c.create(join(d, 'open'));
    removeAllStagedSync();
    expect(ls(d)).toEqual([]);
    await c.abort();
  });
});
