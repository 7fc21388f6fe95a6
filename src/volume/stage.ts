import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFile, lstat, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolError } from '../errors.js';
import { rsyncFilterArgs, parseFilterDebug, type FilterHit, type Selection } from './select.js';
import { RSYNC_COPY_FLAGS, RSYNC_VANISHED, runRsync, unescapeRsync } from './rsync.js';

const run = promisify(execFile);

export interface SelectedFiles {
  /** Volume-relative names (raw bytes: names need not be UTF-8), directories included. */
  names: Buffer[];
  /** What the sensitive filter left out, with the original's glob that matched. */
  filtered: FilterHit[];
}

const LIST_PREFIX = '>>';

function rsyncError(what: string, r: { code: number; stderrTail: string[] }): ToolError {
  const detail = r.stderrTail.filter((l) => l.trim()).slice(-2).join(' | ');
  return new ToolError(`${what} failed (rsync exit code ${r.code})${detail ? `: ${detail}` : ''}`);
}

/** rsync --dry-run with the selection: the exact list of what would be copied, and what the filter hides. */
export async function listSelection(volume: string, sel: Selection): Promise<SelectedFiles & { vanished: boolean }> {
  const names: Buffer[] = [];
  const filtered: FilterHit[] = [];
  const r = await runRsync(
    ['--dry-run', ...RSYNC_COPY_FLAGS, '--debug=FILTER1', `--out-format=${LIST_PREFIX}%n`, ...rsyncFilterArgs(sel.rules),
      volume.replace(/\/?$/, '/'), '/nonexistent-amitools-dry-run/'],
    (line) => {
      if (line.startsWith(LIST_PREFIX)) {
        names.push(unescapeRsync(line.slice(LIST_PREFIX.length).replace(/\/$/, '')));
        return;
      }
      const hit = parseFilterDebug(line);
      if (hit && sel.sensitive.has(hit.pattern)) {
        filtered.push({ ...hit, path: unescapeRsync(hit.path).toString('utf8'), pattern: sel.sensitive.get(hit.pattern)! });
      }
    });
  if (r.code !== 0 && r.code !== RSYNC_VANISHED) throw rsyncError(`Listing the files of ${volume}`, r);
  return { names, filtered, vanished: r.code === RSYNC_VANISHED };
}

/**
 * What the files need on an ext filesystem, in bytes: allocated blocks (hard links once, holes free) plus an inode
 * and a directory entry each. Files that vanished since the listing count as nothing.
 */
export async function measureSelection(volume: string, names: Buffer[]): Promise<{ bytes: number; inodes: number }> {
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const base = Buffer.from(volume.replace(/\/?$/, '/'));
  for (const name of names) {
    let st;
    try {
      st = await lstat(Buffer.concat([base, name]), { bigint: false });
    } catch {
      continue;
    }
    if (st.nlink > 1 && !st.isDirectory()) {
      const k = `${st.dev}:${st.ino}`;
      if (seen.has(k)) { bytes += 64; continue; }
      seen.add(k);
    }
    inodes++;
    // Round to 4 KiB blocks: the staging filesystem may use smaller ones; symlinks under 60 bytes live in the inode.
    const alloc = st.isSymbolicLink() && st.size < 60 ? 0 : Math.ceil((st.blocks * 512) / 4096) * 4096;
    bytes += alloc + 64;
  }
  return { bytes, inodes };
}

/**
 * Regular files at least this large are hard-linked when staging by links; smaller ones are copied. mke2fs -d looks
 * every multiply-linked file up in a list (time quadratic in their number: 50,000 linked files cost it seconds more),
 * and on a typical root the files under 32 KiB are nine in ten of the files but under a tenth of the bytes.
 */
export const LINK_MIN_SIZE = 32 * 1024;

/**
 * rsync -aHAXS --numeric-ids of the selection into the staging directory. Returns true if files vanished meanwhile.
 * With `link` (the staging directory on the volume's filesystem), files of LINK_MIN_SIZE or more become hard links
 * to the volume's own (rsync --link-dest) instead of copies: the staged tree then shares those inodes with the live
 * volume, so every later change to it must replace a file (unlink, then create), never write into one.
 */
export async function copyToStaging(volume: string, staging: string, sel: Selection, link = false, signal?: AbortSignal): Promise<boolean> {
  const from = volume.replace(/\/?$/, '/');
  const passes = link ? [[`--max-size=${LINK_MIN_SIZE - 1}`], [`--min-size=${LINK_MIN_SIZE}`, `--link-dest=${from}`]] : [[]];
  let vanished = false;
  for (const extra of passes) {
    const r = await runRsync([...RSYNC_COPY_FLAGS, ...extra, ...rsyncFilterArgs(sel.rules), from, staging.replace(/\/?$/, '/')], () => {}, signal);
    if (r.code !== 0 && r.code !== RSYNC_VANISHED) throw rsyncError(`Copying ${volume} to ${staging}`, r);
    vanished ||= r.code === RSYNC_VANISHED;
  }
  return vanished;
}

async function exists(p: string): Promise<boolean> {
  try { await lstat(p); return true; } catch { return false; }
}

/** The device nodes the original creates in the image's /dev (its contents are never copied). */
export const DEV_NODES: { name: string; major: number; minor: number; mode: number }[] = [
  { name: 'null', major: 1, minor: 3, mode: 0o666 },
  { name: 'zero', major: 1, minor: 5, mode: 0o666 },
  { name: 'tty', major: 5, minor: 0, mode: 0o666 },
  { name: 'console', major: 5, minor: 1, mode: 0o600 },
];

/** Makes sure /dev /proc /sys exist (a boot needs them), then creates the original's /dev nodes and /dev/X0R → null. */
export async function prepareSpecialDirs(staging: string): Promise<void> {
  for (const [dir, mode] of [['dev', 0o755], ['proc', 0o555], ['sys', 0o555]] as const) {
    const p = join(staging, dir);
    if (!(await exists(p))) await mkdir(p, { mode });
  }
  const dev = join(staging, 'dev');
  for (const n of DEV_NODES) {
    const p = join(dev, n.name);
    await rm(p, { force: true, recursive: true });
    try {
      await run('mknod', ['-m', n.mode.toString(8), p, 'c', String(n.major), String(n.minor)]);
    } catch (err) {
      throw new ToolError(`Could not create the device node /dev/${n.name} in ${staging}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const x0r = join(dev, 'X0R');
  await rm(x0r, { force: true, recursive: true });
  await symlink('null', x0r);
}

/** The fstab --generate-fstab writes: the root by UUID (its device name differs between PV, Xen HVM and Nitro). */
export function ec2Fstab(rootUuid: string, fsType: string): string {
  return [
    `UUID=${rootUuid}\t/\t${fsType}\tdefaults\t1 1`,
    'none\t/dev/pts\tdevpts\tgid=5,mode=620\t0 0',
    'none\t/dev/shm\ttmpfs\tdefaults\t0 0',
    'none\t/proc\tproc\tdefaults\t0 0',
    'none\t/sys\tsysfs\tdefaults\t0 0',
    '',
  ].join('\n');
}

async function replaceFile(target: string, content: { from?: string; text?: string }, mode = 0o644): Promise<void> {
  await mkdir(join(target, '..'), { recursive: true });
  // A symlink (menu.lst → grub.conf) must not lead the copy out of the staging tree.
  await rm(target, { force: true });
  if (content.from !== undefined) await copyFile(content.from, target);
  else await writeFile(target, content.text ?? '', { mode });
}

export async function applyFstab(staging: string, o: { fstab?: string; generate?: { uuid: string; fsType: string } }): Promise<void> {
  const target = join(staging, 'etc', 'fstab');
  if (o.fstab !== undefined) await replaceFile(target, { from: o.fstab });
  else if (o.generate) await replaceFile(target, { text: ec2Fstab(o.generate.uuid, o.generate.fsType) });
}

/** --grub-config: copied over /boot/grub/menu.lst and /boot/grub/grub.conf, as the original does. */
export async function applyGrubConfig(staging: string, path: string): Promise<void> {
  for (const name of ['menu.lst', 'grub.conf']) await replaceFile(join(staging, 'boot', 'grub', name), { from: path });
}

/** -S SCRIPT: run with the staging directory as its one argument; its output goes to ours. */
export function runScript(script: string, staging: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, [staging], { stdio: ['ignore', 'inherit', 'inherit'], signal });
    child.on('error', (err) => reject(new ToolError(`The script ${script} could not be run: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new ToolError(`The script ${script} failed (${signal ? `signal ${signal}` : `exit code ${code}`}); no image was made`));
    });
  });
}
