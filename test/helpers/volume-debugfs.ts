import { execFileSync, spawnSync } from 'node:child_process';

/** Reads an ext filesystem inside an image file with debugfs (e2fsprogs), never mounting it. */
export class ExtImage {
  constructor(readonly image: string, readonly offset: number) {}

  private get spec(): string {
    return `${this.image}?offset=${this.offset}`;
  }

  request(req: string): string {
    const r = spawnSync('debugfs', ['-R', req, this.spec], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`debugfs -R '${req}' failed: ${r.stderr}`);
    return r.stdout;
  }

  private static quote(path: string): string {
    return `"${path.replace(/(["\\])/g, '\\$1')}"`;
  }

  /** The inode's fields, or undefined when the path does not exist. */
  stat(path: string): { type: string; mode: number; uid: number; gid: number; links: number; size: number; mtime: number; rdev?: [number, number]; blockcount: number } | undefined {
    const out = this.request(`stat ${ExtImage.quote(path)}`);
    const type = /Type: ([A-Za-z ]+?)\s+Mode:/.exec(out)?.[1];
    if (!type) return undefined;
    const dev = /Device major\/minor number: (\d+):(\d+)/.exec(out);
    return {
      type,
      mode: parseInt(/Mode:\s+(\d+)/.exec(out)![1], 8),
      uid: Number(/User:\s+(\d+)/.exec(out)![1]),
      gid: Number(/Group:\s+(\d+)/.exec(out)![1]),
      links: Number(/Links: (\d+)/.exec(out)![1]),
      size: Number(/Size: (\d+)/.exec(out)![1]),
      mtime: parseInt(/ mtime: 0x([0-9a-f]+)/.exec(out)![1], 16),
      blockcount: Number(/Blockcount: (\d+)/.exec(out)![1]),
      rdev: dev ? [Number(dev[1]), Number(dev[2])] : undefined,
    };
  }

  cat(path: string): Buffer {
    return execFileSync('debugfs', ['-R', `cat ${ExtImage.quote(path)}`, this.spec], { maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'ignore'] });
  }

  /** A symlink's target: fast ones live in the inode (stat shows them), slow ones in a data block. */
  readlink(path: string): string {
    const fast = /Fast link dest: "(.*)"/.exec(this.request(`stat ${ExtImage.quote(path)}`));
    return fast ? fast[1] : this.cat(path).toString('utf8');
  }

  /** Names in a directory, without . and .. */
  list(dir: string): string[] {
    const out = this.request(`ls -p ${ExtImage.quote(dir)}`);
    return out.split('\n').filter((l) => l.startsWith('/')).map((l) => l.split('/')[5]).filter((n) => n !== '.' && n !== '..');
  }

  /** An xattr's value as lowercase hex, or undefined. */
  xattrHex(path: string, name: string): string | undefined {
    const out = this.request(`ea_get -x ${ExtImage.quote(path)} ${name}`);
    const m = new RegExp(`${name.replace(/\./g, '\\.')} \\(\\d+\\) = ([0-9a-f ]+)`).exec(out);
    return m ? m[1].replace(/\s+/g, '') : undefined;
  }

  /** Filesystem type, label and UUID from the superblock. */
  superblock(): { label: string; uuid: string; features: string } {
    const out = this.request('stats -h');
    return {
      label: /Filesystem volume name:\s+(.*)/.exec(out)![1].trim(),
      uuid: /Filesystem UUID:\s+(\S+)/.exec(out)![1],
      features: /Filesystem features:\s+(.*)/.exec(out)![1],
    };
  }
}

/** e2fsck -fn on the filesystem at an offset: exit code and output. */
export function fsck(image: string, offset: number): { code: number | null; output: string } {
  const r = spawnSync('e2fsck', ['-fn', `${image}?offset=${offset}`], { encoding: 'utf8' });
  return { code: r.status, output: r.stdout + r.stderr };
}

/** sfdisk --json of an image: the label and partitions (start/size in sectors, type). */
export function partitionTable(image: string): { label: string; partitions: { node: string; start: number; size: number; type: string; bootable?: boolean; name?: string }[] } | undefined {
  const r = spawnSync('sfdisk', ['--json', image], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return JSON.parse(r.stdout).partitiontable;
}
