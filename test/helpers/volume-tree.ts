import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lchown, mkdir, open, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/** What a synthetic volume holds, for the checks after the round trip. */
export interface TreeEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  content?: string;
  target?: string;
  links?: number;
  rdev?: [number, number];
  xattrs?: Record<string, string>;
  mtime?: number;
}

export const LONG_NAME = 'L'.repeat(200) + '-long-name-255-' + 'x'.repeat(40);
export const UNICODE_NAME = 'café ☕ Ωmega — 日本語.txt';
export const LONG_TARGET = '../../' + 'deep/'.repeat(20) + 'target-of-a-slow-symlink';
// security.capability v2 with cap_net_raw in the permitted and effective sets.
export const CAP_NET_RAW = '0x0100000200200000000000000000000000000000';

/** Files that must end up in the image, exactly as described. */
export const KEPT: TreeEntry[] = [
  { path: '/etc', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
  { path: '/etc/hostname', type: 'file', mode: 0o644, uid: 0, gid: 0, content: 'synthetic\n', mtime: 1_500_000_000 },
  { path: '/etc/shadow', type: 'file', mode: 0o640, uid: 0, gid: 42, content: 'root:*:19000:0:99999:7:::\n' },
  { path: '/etc/ssl/certs/ca-certificates.pem', type: 'file', mode: 0o644, uid: 0, gid: 0, content: 'CA bundle\n' },
  { path: '/usr/share/keyrings/debian-archive-keyring.gpg', type: 'file', mode: 0o644, uid: 0, gid: 0, content: 'keyring\n' },
  { path: '/etc/apt/trusted.gpg.d/extra.gpg', type: 'file', mode: 0o644, uid: 0, gid: 0, content: 'apt key\n' },
  { path: '/home/alice', type: 'dir', mode: 0o700, uid: 1001, gid: 1001 },
  { path: '/home/alice/notes.txt', type: 'file', mode: 0o640, uid: 1001, gid: 1001, content: 'notes of alice\n', xattrs: { 'user.comment': 'kept xattr' }, mtime: 1_400_000_000 },
  { path: `/home/alice/${UNICODE_NAME}`, type: 'file', mode: 0o644, uid: 1001, gid: 1001, content: 'unicode\n' },
  { path: `/home/alice/${LONG_NAME}`, type: 'file', mode: 0o644, uid: 1001, gid: 1001, content: 'long name\n' },
  { path: '/root/server.pem', type: 'file', mode: 0o600, uid: 0, gid: 0, content: 'kept by -i\n' },
  { path: '/usr/bin/tool', type: 'file', mode: 0o4755, uid: 0, gid: 0, content: '#!/bin/sh\necho tool\n', links: 2 },
  { path: '/usr/bin/tool-alias', type: 'file', mode: 0o4755, uid: 0, gid: 0, content: '#!/bin/sh\necho tool\n', links: 2 },
  { path: '/usr/bin/pinger', type: 'file', mode: 0o755, uid: 0, gid: 0, content: 'ping\n', xattrs: { 'security.capability': CAP_NET_RAW } },
  { path: '/usr/bin/sh-link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, target: 'tool' },
  { path: '/usr/bin/slow-link', type: 'symlink', mode: 0o777, uid: 1001, gid: 1001, target: LONG_TARGET },
  { path: '/srv/shared', type: 'dir', mode: 0o2775, uid: 0, gid: 1001 },
  { path: '/tmp', type: 'dir', mode: 0o1777, uid: 0, gid: 0 },
  { path: '/opt/devs/ttyS0', type: 'char', mode: 0o660, uid: 0, gid: 20, rdev: [4, 64] },
  { path: '/opt/devs/loop7', type: 'block', mode: 0o660, uid: 0, gid: 6, rdev: [7, 7] },
  { path: '/var/spool/queue.fifo', type: 'fifo', mode: 0o620, uid: 1001, gid: 0 },
  { path: '/var/run-sock/agent.sock', type: 'socket', mode: 0o755, uid: 0, gid: 0 },
  { path: '/scratch', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
  { path: '/proc', type: 'dir', mode: 0o555, uid: 0, gid: 0 },
  { path: '/sys', type: 'dir', mode: 0o555, uid: 0, gid: 0 },
  { path: '/mnt', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
  { path: '/media', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
  { path: '/dev', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
];

/** Files the sensitive filter must drop (the glob that drops each). */
export const FILTERED: [string, string][] = [
  ['/home/alice/.bash_history', '*/.bash_history'],
  ['/home/alice/.ssh/authorized_keys', '*/.ssh/authorized_keys'],
  ['/home/alice/.ssh/id_rsa', '*id_rsa*'],
  ['/home/alice/.ssh/id_dsa.pub', '*id_dsa*'],
  ['/home/alice/draft.txt~', '*~'],
  ['/home/alice/.#lockfile', '*/.#*'],
  ['/home/alice/#autosave#', '*/#*#'],
  ['/home/alice/.notes.swp', '*.swp'],
  ['/home/alice/.notes.swo', '*.swo'],
  ['/home/alice/x.sw', '*.sw'],
  ['/etc/ssl/private/host.pem', '*.pem'],
  ['/etc/secret.priv', '*.priv'],
  ['/home/alice/signing.gpg', '*.gpg'],
  ['/opt/app/keystore.jks', '*.jks'],
];

/** Paths that must be absent: -e'd, emptied directories' contents. */
export const ABSENT = [
  '/var/cache/excluded', '/var/cache/excluded/big.bin', '/scratch/tmpfile', '/proc/1', '/proc/1/status', '/sys/kernel',
  '/mnt/data', '/media/cdrom', '/dev/sda', '/dev/shm',
];

export const EXCLUDE_FLAGS = ['-e', '/var/cache/excluded,/scratch/*', '-i', '/root/server.pem'];
export const SPARSE = { path: '/var/lib/sparse.img', size: 64 * 1024 * 1024, dataAt: 32 * 1024 * 1024, data: 'sparse data block\n' };

async function put(root: string, e: TreeEntry): Promise<void> {
  const p = join(root, e.path);
  await mkdir(dirname(p), { recursive: true });
  switch (e.type) {
    case 'dir': await mkdir(p, { recursive: true }); break;
    case 'file': await writeFile(p, e.content ?? ''); break;
    case 'symlink': await symlink(e.target!, p); break;
    case 'char': case 'block':
      execFileSync('mknod', [p, e.type === 'char' ? 'c' : 'b', String(e.rdev![0]), String(e.rdev![1])]);
      break;
    case 'fifo': execFileSync('mkfifo', [p]); break;
    case 'socket': {
      // Node unlinks a socket it closes: keep a second name of it.
      const srv = createServer();
      await new Promise<void>((r) => srv.listen(p + '.tmp', r));
      await link(p + '.tmp', p);
      await new Promise<void>((r) => srv.close(() => r()));
      break;
    }
  }
  if (e.type === 'symlink') await lchown(p, e.uid, e.gid);
  else {
    await chown(p, e.uid, e.gid);
    await chmod(p, e.mode);
  }
  for (const [k, v] of Object.entries(e.xattrs ?? {})) execFileSync('setfattr', ['-n', k, '-v', v, p]);
  if (e.mtime !== undefined && e.type !== 'symlink') await utimes(p, e.mtime, e.mtime);
}

/** Builds the synthetic volume (as root): every file type, owners, modes, xattrs, an ACL, a sparse file. */
export async function buildSyntheticVolume(root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  await chmod(root, 0o755);
  const entries = KEPT.filter((e) => e.path !== '/usr/bin/tool-alias');
  for (const e of entries) await put(root, e);
  await link(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-alias'));
  // An ACL: stored as the system.posix_acl_access xattr.
  execFileSync('setfacl', ['-m', 'u:1002:r', join(root, 'home/alice/notes.txt')]);
  for (const [p] of FILTERED) {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), `sensitive ${p}\n`);
  }
  for (const p of ['/var/cache/excluded/big.bin', '/scratch/tmpfile', '/proc/1/status', '/sys/kernel/notes', '/mnt/data/f', '/media/cdrom/f', '/dev/sda', '/dev/shm/x']) {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), `must not be copied ${p}\n`);
  }
  await mkdir(dirname(join(root, SPARSE.path)), { recursive: true });
  const fh = await open(join(root, SPARSE.path), 'w');
  await fh.write(SPARSE.data, SPARSE.dataAt);
  await fh.truncate(SPARSE.size);
  await fh.close();
}
