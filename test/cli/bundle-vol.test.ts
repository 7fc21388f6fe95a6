import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../../src/format/manifest.js';
import { key, unmetPrerequisite } from '../helpers/paths.js';

const unmet = unmetPrerequisite('ec2-bundle-vol tests', { root: true, commands: ['rsync', 'mke2fs', 'sfdisk'] });
import { runCli } from '../helpers/run.js';
import { sha1File } from '../helpers/images.js';
import { ExtImage, fsck, partitionTable } from '../helpers/volume-debugfs.js';
import { ABSENT, EXCLUDE_FLAGS, FILTERED, KEPT, SPARSE, buildSyntheticVolume } from '../helpers/volume-tree.js';

const BUNDLE_FLAGS = ['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '1234-5678-9012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--batch'];
const MiB = 1024 * 1024;

let work: string;
let tree: string;

beforeAll(async () => {
  if (unmet) return;
  work = await mkdtemp(join(tmpdir(), 'amitools-bundle-vol-'));
  tree = join(work, 'tree');
  await buildSyntheticVolume(tree);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const EXPECTED_TABLE = {
  mbr: { label: 'dos', offset: MiB, parts: [{ start: 2048, size: 95 * 2048, type: '83', bootable: true }] },
  gpt: {
    label: 'gpt', offset: 2 * MiB,
    parts: [
      { start: 4096, size: 93 * 2048, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4' },
      { start: 2048, size: 2048, type: '21686148-6449-6E6F-744E-656564454649' },
    ],
  },
  none: { label: undefined, offset: 0, parts: [] },
} as const;

describe.skipIf(unmet !== undefined).each(['mbr', 'gpt', 'none'] as const)('ec2-bundle-vol -P %s: a synthetic volume, bundled and unbundled', (scheme) => {
  let out: string;
  let unbundled: string;
  let stdout: string;
  let img: ExtImage;

  beforeAll(async () => {
    out = join(work, `out-${scheme}`);
    unbundled = join(work, `unbundled-${scheme}`);
    await mkdir(out);
    await mkdir(unbundled);
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '-P', scheme, '--no-inherit', '-s', '96', ...EXCLUDE_FLAGS, ...BUNDLE_FLAGS]);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('ERROR'))).toEqual([]);
    expect(r.code).toBe(0);
    stdout = r.stdout;
    const u = await runCli('ec2-unbundle', ['-k', key('user-key.pem'), '-m', join(out, 'image.manifest.xml'), '-s', out, '-d', unbundled]);
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    img = new ExtImage(join(unbundled, 'image'), EXPECTED_TABLE[scheme].offset);
  });

  it('prints what the filter dropped and leaves only the image and the bundle behind', async () => {
    for (const [path, glob] of FILTERED) expect(stdout).toContain(`\t ${path}  [${glob}]`);
    expect(stdout).not.toContain('/root/server.pem');
    expect(stdout).toContain('Image file created: ');
    expect(stdout.trim().split('\n').at(-1)).toBe('ec2-bundle-vol complete.');
    const names = (await readdir(out)).sort();
    expect(names).toEqual(['image', 'image.manifest.xml', 'image.part.0']);
    expect(await sha1File(join(unbundled, 'image'))).toBe(await sha1File(join(out, 'image')));
  });

  it('has the partition table asked for', () => {
    const t = partitionTable(join(unbundled, 'image'));
    const want = EXPECTED_TABLE[scheme];
    if (!want.label) {
      expect(t).toBeUndefined();
      return;
    }
    expect(t!.label).toBe(want.label);
    expect(t!.partitions.map((p) => ({ start: p.start, size: p.size, type: p.type.toUpperCase(), ...(p.bootable ? { bootable: true } : {}) }))).toEqual(want.parts);
    const dump = spawnSync('sfdisk', ['--dump', join(unbundled, 'image')], { encoding: 'utf8' }).stdout;
    expect(dump).toContain(`label: ${want.label}`);
  });

  it('holds a filesystem e2fsck finds clean, of 96 MB less the partition overhead', () => {
    const r = fsck(join(unbundled, 'image'), EXPECTED_TABLE[scheme].offset);
    expect(r.output).not.toMatch(/error|corrupt|fix\?/i);
    expect(r.code).toBe(0);
    expect(img.superblock().features).toContain('extent');
  });

  it('keeps every file with its content, owner, mode, link count, device numbers and mtime', () => {
    for (const e of KEPT) {
      const st = img.stat(e.path);
      expect(st, e.path).toBeDefined();
      const wantType = { file: 'regular', dir: 'directory', symlink: 'symlink', char: 'character special', block: 'block special', fifo: 'FIFO', socket: 'socket' }[e.type];
      expect(st!.type, e.path).toBe(wantType);
      expect({ path: e.path, mode: st!.mode & 0o7777, uid: st!.uid, gid: st!.gid }).toEqual({ path: e.path, mode: e.mode, uid: e.uid, gid: e.gid });
      if (e.content !== undefined) expect(img.cat(e.path).toString('utf8'), e.path).toBe(e.content);
      if (e.target !== undefined) expect(img.readlink(e.path), e.path).toBe(e.target);
      if (e.links !== undefined) expect(st!.links, e.path).toBe(e.links);
      if (e.rdev) expect(st!.rdev, e.path).toEqual(e.rdev);
      if (e.mtime !== undefined) expect(st!.mtime, e.path).toBe(e.mtime);
    }
  });

  it('keeps xattrs: user.*, security.capability and the ACL', () => {
    expect(Buffer.from(img.xattrHex('/home/alice/notes.txt', 'user.comment')!, 'hex').toString()).toBe('kept xattr');
    expect('0x' + img.xattrHex('/usr/bin/pinger', 'security.capability')).toBe('0x0100000200200000000000000000000000000000');
    // posix ACL, version 2 with a named user 1002 (0x3ea) entry with read permission
    const acl = img.xattrHex('/home/alice/notes.txt', 'system.posix_acl_access')!;
    expect(acl).toContain('020004 00ea030000'.replace(' ', ''));
  });

  it('keeps the sparse file sparse with its data in place', () => {
    const st = img.stat(SPARSE.path)!;
    expect(st.size).toBe(SPARSE.size);
    expect(st.blockcount).toBeLessThanOrEqual(16);
    const data = img.cat(SPARSE.path);
    expect(data.length).toBe(SPARSE.size);
    expect(data.subarray(SPARSE.dataAt, SPARSE.dataAt + SPARSE.data.length).toString()).toBe(SPARSE.data);
  });

  it('leaves out filtered and excluded files, keeping the emptied directories', () => {
    for (const [path] of FILTERED) expect(img.stat(path), path).toBeUndefined();
    for (const path of ABSENT) expect(img.stat(path), path).toBeUndefined();
    expect(img.list('/scratch')).toEqual([]);
    expect(img.list('/proc')).toEqual([]);
    expect(img.list('/sys')).toEqual([]);
    expect(img.list('/mnt')).toEqual([]);
    expect(img.list('/media')).toEqual([]);
  });

  it("has in /dev exactly the original's device nodes", () => {
    expect(img.list('/dev').sort()).toEqual(['X0R', 'console', 'null', 'tty', 'zero']);
    expect(img.stat('/dev/null')).toMatchObject({ type: 'character special', rdev: [1, 3], mode: 0o666, uid: 0 });
    expect(img.stat('/dev/zero')).toMatchObject({ type: 'character special', rdev: [1, 5] });
    expect(img.stat('/dev/tty')).toMatchObject({ type: 'character special', rdev: [5, 0] });
    expect(img.stat('/dev/console')).toMatchObject({ type: 'character special', rdev: [5, 1], mode: 0o600 });
    expect(img.readlink('/dev/X0R')).toBe('null');
  });

  it('writes a manifest without inherited fields (--no-inherit)', async () => {
    const m = parseManifest(await readFile(join(out, 'image.manifest.xml'), 'utf8'));
    expect(m.user).toBe('123456789012');
    expect(m.name).toBe('image');
    expect(m.size).toBe(96 * MiB);
    expect(m.kernelId).toBeUndefined();
    expect(m.ramdiskId).toBeUndefined();
    expect(m.ancestry).toEqual([]);
    expect(m.productCodes).toEqual([]);
    expect(m.blockDeviceMappings).toEqual([]);
  });
});
