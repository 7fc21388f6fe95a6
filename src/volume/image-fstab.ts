// Removes the instance-store entries from /etc/fstab inside an image (a file or a block device) without mounting it:
// the root filesystem is found from the partition table, and an ext2/3/4 filesystem is read and written with
// e2fsprogs' debugfs at that byte offset. The old file stays beside the new one as /etc/fstab.orig.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ToolError } from '../errors.js';
import { readRange } from '../store/regular-file.js';
import { planFstab, type RemovedEntry } from '../format/fstab.js';
import { filesystemType, findRootFilesystem, ROOT_SEARCH_BYTES, type RootLocation } from '../format/partition-table.js';

const run = promisify(execFile);
/** An fstab larger than this is not one a system wrote: left alone. */
const MAX_FSTAB = 1 << 20;

export type FstabOutcome =
  /** Entries were removed (or, with dryRun, would be); the old file is `origName`. */
  | { status: 'edited' | 'planned'; removed: RemovedEntry[]; origName: string; root: RootLocation }
  /** The file has no instance-store entries. */
  | { status: 'unchanged'; removed: []; root: RootLocation }
  /** Not edited, and why (another filesystem type, no fstab…): a warning for the user. */
  | { status: 'skipped'; reason: string; root?: RootLocation };

async function debugfs(args: string[]): Promise<{ stdout: Buffer; stderr: string }> {
  try {
    const { stdout, stderr } = await run('debugfs', args, { encoding: 'buffer', maxBuffer: 4 * MAX_FSTAB });
    return { stdout, stderr: stderr.toString('utf8') };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new ToolError('debugfs (e2fsprogs) is needed to edit /etc/fstab in the image: install e2fsprogs, or leave /etc/fstab as it is', { code: 'EXTERNAL_TOOL', cause: err, option: 'fixFstab' });
    throw new ToolError(`debugfs failed: ${(e.stderr?.toString('utf8') ?? e.message).trim().split('\n').pop()}`, { code: 'EXTERNAL_TOOL', cause: err });
  }
}

/** debugfs's stat of a path: its type, mode, owner and size, or undefined when there is no such file. */
async function statIn(spec: string, path: string): Promise<{ type: string; mode: number; uid: number; gid: number; size: number } | undefined> {
  const out = (await debugfs(['-R', `stat "${path}"`, spec])).stdout.toString('utf8');
  const type = /Type: ([A-Za-z ]+?)\s+Mode:\s+(\d+)/.exec(out);
  if (!type) return undefined;
  return {
    type: type[1]!, mode: parseInt(type[2]!, 8),
    uid: Number(/User:\s+(\d+)/.exec(out)?.[1] ?? 0), gid: Number(/Group:\s+(\d+)/.exec(out)?.[1] ?? 0), size: Number(/Size: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

async function catIn(spec: string, path: string): Promise<Buffer> {
  return (await debugfs(['-R', `cat "${path}"`, spec])).stdout;
}

/** Where the image's root filesystem is and what it is. */
export async function imageRoot(image: string): Promise<{ root: RootLocation; fs?: 'ext' | 'xfs' }> {
  const root = findRootFilesystem(await readRange(image, 0, ROOT_SEARCH_BYTES));
  if (root.kind === 'none') return { root };
  return { root, fs: filesystemType(await readRange(image, root.offset, 2048)) };
}

/**
 * Plans (dryRun) or makes the edit of /etc/fstab in the image's root filesystem. `mapped`: the devices the manifest
 * maps to ephemeral and swap volumes, whose entries go too. Nothing is written unless an entry is removed.
 */
export async function fixImageFstab(image: string, o: { mapped?: string[]; dryRun?: boolean } = {}): Promise<FstabOutcome> {
  const { root, fs } = await imageRoot(image);
  if (root.kind === 'none') return { status: 'skipped', reason: `no root filesystem found: the image is ${root.description}` };
  if (fs !== 'ext') {
    return { status: 'skipped', root, reason: `the root filesystem (${root.description}) is ${fs === 'xfs' ? 'XFS' : 'not ext2/3/4'}; only ext2/3/4 can be edited without mounting` };
  }
  const spec = `${image}?offset=${root.offset}`;
  const stats = (await debugfs(['-R', 'stats -h', spec])).stdout.toString('utf8');
  if (/Filesystem features:.*\bneeds_recovery\b/.test(stats)) {
    return { status: 'skipped', root, reason: 'the root filesystem\'s journal needs recovery (it was not unmounted cleanly); edit /etc/fstab after the first boot' };
  }
  const st = await statIn(spec, '/etc/fstab');
  if (!st) return { status: 'skipped', root, reason: 'the root filesystem has no /etc/fstab' };
  if (st.type !== 'regular') return { status: 'skipped', root, reason: `/etc/fstab is a ${st.type}, not a regular file` };
  if (st.size > MAX_FSTAB) return { status: 'skipped', root, reason: `/etc/fstab is ${st.size} bytes long` };
  const old = await catIn(spec, '/etc/fstab');
  const plan = planFstab(old.toString('utf8'), o.mapped);
  if (plan.removed.length === 0) return { status: 'unchanged', removed: [], root };
  let origName = '/etc/fstab.orig';
  for (let i = 1; await statIn(spec, origName); i++) {
    if (i > 9) return { status: 'skipped', root, reason: '/etc/fstab.orig through /etc/fstab.orig.9 all exist' };
    origName = `/etc/fstab.orig.${i}`;
  }
  if (o.dryRun) return { status: 'planned', removed: plan.removed, origName, root };

  const dir = await mkdtemp(join(tmpdir(), 'amitools-fstab-'));
  try {
    const local = join(dir, 'fstab');
    await writeFile(local, plan.text, { mode: 0o600 });
    const q = (s: string) => `"${s.replace(/(["\\])/g, '\\$1')}"`;
    // ln + unlink is a rename that keeps the inode (debugfs leaves link counts alone); write makes the new file,
    // which then gets the old one's owner and mode.
    const script = [
      `ln /etc/fstab ${origName}`, 'unlink /etc/fstab', `write ${q(local)} /etc/fstab`,
      `set_inode_field /etc/fstab mode 0${(0o100000 | (st.mode & 0o7777)).toString(8)}`,
      `set_inode_field /etc/fstab uid ${st.uid}`, `set_inode_field /etc/fstab gid ${st.gid}`,
    ].join('\n') + '\n';
    await writeFile(join(dir, 'commands'), script);
    await debugfs(['-w', '-f', join(dir, 'commands'), spec]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // debugfs reports a failed command but still exits 0: the result is read back.
  const [now, kept] = [await catIn(spec, '/etc/fstab'), await catIn(spec, origName)];
  if (!now.equals(Buffer.from(plan.text)) || !kept.equals(old)) {
    throw new ToolError(`editing /etc/fstab in ${image} with debugfs failed: the files read back differ from what was written`, { code: 'EXTERNAL_TOOL' });
  }
  return { status: 'edited', removed: plan.removed, origName, root };
}
