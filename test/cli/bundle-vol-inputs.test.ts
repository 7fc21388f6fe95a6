import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../../src/format/manifest.js';
import { METADATA_UNREACHABLE } from '../../src/ec2/metadata.js';
import { key, ROOT, unmetPrerequisite } from '../helpers/paths.js';

const unmet = unmetPrerequisite('ec2-bundle-vol input tests', { root: true, commands: ['rsync', 'mke2fs', 'sfdisk'] });
import { runCli, runProcess } from '../helpers/run.js';
import { writeImage } from '../helpers/images.js';
import { SAMPLE_METADATA, startImds, type ImdsStandin } from '../helpers/volume-imds.js';
import { ExtImage } from '../helpers/volume-debugfs.js';

const BUNDLE_FLAGS = ['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--batch'];

let work: string;
let tree: string;
let n = 0;

beforeAll(async () => {
  if (unmet) return;
  work = await mkdtemp(join(tmpdir(), 'amitools-bundle-vol-in-'));
  tree = join(work, 'tree');
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc', 'hostname'), 'tiny\n');
  // 3 MiB of incompressible data: too much for a 4 MB image.
  await writeImage(join(tree, 'data.bin'), { size: 3 * 1024 * 1024, mode: '0644', mtime: 1_600_000_000, sparse: false, layout: [{ kind: 'random', label: 'bundle-vol', length: 3 * 1024 * 1024 }] });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const d = join(work, `out-${++n}`);
  await mkdir(d);
  return d;
}

async function unreachableEndpoint(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

describe.skipIf(unmet !== undefined)('ec2-bundle-vol --inherit against a stand-in IMDSv2 service', () => {
  let imds: ImdsStandin | undefined;
  afterEach(async () => {
    await imds?.close();
    imds = undefined;
  });

  it('puts kernel, ramdisk, product codes, block device mappings and ancestry (with the ami-id) into the manifest', async () => {
    imds = await startImds({ requireToken: true, data: SAMPLE_METADATA });
    const out = await freshDir();
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '-P', 'none', '-s', '16', ...BUNDLE_FLAGS], { env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url } });
    expect(r.stderr.split('\n').filter((l) => l.startsWith('ERROR'))).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Inherited from instance metadata: ami-id, ancestor-ami-ids, kernel-id, ramdisk-id, product-codes, block-device-mapping');
    const m = parseManifest(await readFile(join(out, 'image.manifest.xml'), 'utf8'));
    expect(m.kernelId).toBe('aki-88aa75e1');
    expect(m.ramdiskId).toBe('ari-4ca64d25');
    expect(m.productCodes).toEqual(['PC1A2B3C,PC4D5E6F']);
    expect(m.ancestry).toEqual(['ami-0000000a', 'ami-0000000b', 'ami-12345678']);
    expect(m.blockDeviceMappings).toEqual([
      { virtual: 'ami', device: 'sda1' },
      { virtual: 'ephemeral0', device: 'sdb' },
      { virtual: 'root', device: '/dev/sda1' },
      { virtual: 'swap', device: 'sda3' },
    ]);
    // Every metadata read carried the session token.
    expect(imds.log.filter((l) => l.startsWith('GET')).every((l) => l.endsWith(' v2'))).toBe(true);
  });

  it('lets explicit flags win and says which fields the service lacked', async () => {
    imds = await startImds({ requireToken: true, data: { 'ami-id': 'ami-99999999', 'kernel-id': 'aki-fromimds' } });
    const out = await freshDir();
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '-P', 'none', '-s', '16', '--kernel', 'aki-fromflag', ...BUNDLE_FLAGS], { env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Unable to read instance meta-data for ramdisk-id');
    expect(r.stdout).toContain('Unable to read instance meta-data for block-device-mapping');
    const m = parseManifest(await readFile(join(out, 'image.manifest.xml'), 'utf8'));
    expect(m.kernelId).toBe('aki-fromflag');
    expect(m.ramdiskId).toBeUndefined();
    expect(m.ancestry).toEqual(['ami-99999999']);
  });

  it("stops with the original's message, before writing anything, when the service is down", async () => {
    const out = await freshDir();
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '-P', 'none', '-s', '16', ...BUNDLE_FLAGS], { env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: await unreachableEndpoint() } });
    expect(r.code).toBe(254);
    expect(r.stderr).toBe(`ERROR: ${METADATA_UNREACHABLE}\n`);
    expect(await readdir(out)).toEqual([]);
  });

  it('asks nothing of the service with --no-inherit', async () => {
    imds = await startImds({ data: SAMPLE_METADATA });
    const out = await freshDir();
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '-P', 'none', '-s', '16', '--no-inherit', ...BUNDLE_FLAGS], { env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url } });
    expect(r.code).toBe(0);
    expect(imds.log).toEqual([]);
    const m = parseManifest(await readFile(join(out, 'image.manifest.xml'), 'utf8'));
    expect([m.kernelId, m.ramdiskId, m.ancestry, m.productCodes, m.blockDeviceMappings]).toEqual([undefined, undefined, [], [], []]);
  });
});

describe.skipIf(unmet !== undefined)('ec2-bundle-vol bad input: one clear line, non-zero exit, nothing left behind', () => {
  async function expectFailure(args: string[], code: number, message: RegExp, opts: { asNobody?: boolean } = {}): Promise<void> {
    const out = await freshDir();
    await chmod(out, 0o777);
    const full = ['-v', tree, '-d', out, '--no-inherit', '--clone-only', ...args];
    const r = opts.asNobody
      ? await runProcess('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, join(ROOT, 'bin', 'ec2-bundle-vol.js'), ...full])
      : await runCli('ec2-bundle-vol', full);
    expect(r.code).toBe(code);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(message);
    // A usage error adds the original's "Try '… --help'" line; nothing else.
    expect(lines.slice(1)).toEqual(code === 1 ? ["Try 'ec2-bundle-vol --help'"] : []);
    expect(await readdir(out)).toEqual([]);
  }

  it('not root', () => expectFailure(['-P', 'mbr', '-s', '16'], 254, /^ERROR: You need to be root to run ec2-bundle-vol$/, { asNobody: true }));

  it('volume does not exist', () => expectFailure(['-v', join(work, 'no-such-volume'), '-s', '16'], 1, /^--volume has invalid value '.*no-such-volume': Directory does not exist/));

  it('--size too small for the files: stopped before copying', () => expectFailure(['-P', 'mbr', '-s', '4'], 254, /^ERROR: an image of 4 MB is too small: the files need about \d+ MB; make it \d+ MB or more \(--size\)$/));

  it('--size over 10240', () => expectFailure(['-s', '10241'], 1, /^--size has invalid value '10241': the specified size 10241MB is too large/));

  it('-P invalid', () => expectFailure(['-P', 'apm', '-s', '16'], 1, /^--partition has invalid value 'apm': must be one of mbr, gpt, none$/));

  it('a -S script that fails', async () => {
    const script = join(work, 'failing-script.sh');
    await writeFile(script, '#!/bin/sh\ntest -d "$1/etc" || exit 9\necho "script saw $1" >&2\nexit 3\n', { mode: 0o755 });
    const out = await freshDir();
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '--no-inherit', '--clone-only', '-P', 'mbr', '-s', '16', '-S', script]);
    expect(r.code).toBe(254);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('ERROR'));
    expect(errors).toEqual([`ERROR: The script ${script} failed (exit code 3); no image was made`]);
    expect(r.stderr).toContain('script saw'); // it ran, on the staging directory
    expect(await readdir(out)).toEqual([]);
  });

  it('destination inside a directory that is never bundled (/dev, /proc, /sys)', () =>
    expectFailure(['-d', '/dev/shm', '-s', '16'], 1, /^--destination has invalid value '\/dev\/shm': it is inside \/dev, which is never bundled/));

  it('an image file of that name already in the destination', async () => {
    const out = await freshDir();
    await writeFile(join(out, 'image'), 'old');
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '--no-inherit', '--clone-only', '-s', '16']);
    expect(r.code).toBe(254);
    expect(r.stderr).toBe(`ERROR: the specified image file ${join(out, 'image')} already exists\n`);
    expect(await readdir(out)).toEqual(['image']);
  });

  it('missing bundle flags are reported before any copying (unless --clone-only)', async () => {
    const out = await freshDir();
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '--no-inherit', '-s', '16']);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe('missing mandatory parameter: --cert');
    expect(await readdir(out)).toEqual([]);
  });
});

describe.skipIf(unmet !== undefined)('ec2-bundle-vol fstab and GRUB configuration', () => {
  it('--generate-fstab names the root by the UUID the image gets; --grub-config lands in menu.lst and grub.conf; a bad root= is warned about', async () => {
    const out = await freshDir();
    const menu = join(work, 'menu.lst');
    await writeFile(menu, 'default 0\ntimeout 0\ntitle Test\nroot (hd0,0)\nkernel /boot/vmlinuz root=/dev/sda2 ro\n');
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '--no-inherit', '--clone-only', '-P', 'mbr', '-s', '16', '--generate-fstab', '--grub-config', menu]);
    expect(r.code).toBe(0);
    const warnings = r.stderr.trim().split('\n');
    expect(warnings).toContain('WARNING: No GRUB found on the volume: the image will boot only as PV (PV-GRUB reads /boot/grub/menu.lst).');
    const img = new ExtImage(join(out, 'image'), 1024 * 1024);
    const uuid = img.superblock().uuid;
    expect(warnings).toContain(`WARNING: /boot/grub/menu.lst boots with root=/dev/sda2, which will not exist in the image; the image's root is UUID=${uuid}, /dev/xvda1.`);
    expect(img.cat('/etc/fstab').toString().split('\n')[0]).toBe(`UUID=${uuid}\t/\text4\tdefaults\t1 1`);
    expect(img.cat('/boot/grub/menu.lst').toString()).toBe(await readFile(menu, 'utf8'));
    expect(img.cat('/boot/grub/grub.conf').toString()).toBe(await readFile(menu, 'utf8'));
  });

  it('--fstab replaces the volume\'s fstab; without it the volume\'s own is kept', async () => {
    await writeFile(join(tree, 'etc', 'fstab'), '# the volume\'s own\n');
    const fstab = join(work, 'custom-fstab');
    await writeFile(fstab, 'LABEL=custom / ext4 defaults 0 1\n');
    const a = await freshDir();
    expect((await runCli('ec2-bundle-vol', ['-v', tree, '-d', a, '--no-inherit', '--clone-only', '-P', 'none', '-s', '16', '--fstab', fstab])).code).toBe(0);
    expect(new ExtImage(join(a, 'image'), 0).cat('/etc/fstab').toString()).toBe('LABEL=custom / ext4 defaults 0 1\n');
    const b = await freshDir();
    expect((await runCli('ec2-bundle-vol', ['-v', tree, '-d', b, '--no-inherit', '--clone-only', '-P', 'none', '-s', '16'])).code).toBe(0);
    expect(new ExtImage(join(b, 'image'), 0).cat('/etc/fstab').toString()).toBe('# the volume\'s own\n');
  });
});

describe('ec2-bundle-vol staging on the volume\'s filesystem: hard links, and the live volume left untouched', () => {
  const KiB = 1024;
  let vol: string;
  let menu: string;
  /** Content, inode and link count of the volume's files that the staged copy changes or shares. */
  let before: Map<string, { content: Buffer; ino: number; nlink: number; mtimeMs: number }>;
  const WATCHED = ['etc/fstab', 'boot/grub/menu.lst', 'boot/grub/grub.conf', 'dev/null', 'usr/lib/big.bin', 'etc/hostname'];

  async function snapshot(): Promise<typeof before> {
    const m = new Map<string, { content: Buffer; ino: number; nlink: number; mtimeMs: number }>();
    for (const p of WATCHED) {
      const st = await stat(join(vol, p));
      m.set(p, { content: await readFile(join(vol, p)), ino: st.ino, nlink: st.nlink, mtimeMs: st.mtimeMs });
    }
    return m;
  }

  beforeAll(async () => {
    vol = join(work, 'linked-volume');
    for (const d of ['etc', 'boot/grub', 'dev', 'usr/lib']) await mkdir(join(vol, d), { recursive: true });
    // Files of 32 KiB and more are hard-linked into the staging tree; these are exactly the ones it then replaces.
    const big = (label: string) => `# ${label}\n${`# ${'x'.repeat(76)}\n`.repeat(500)}`;
    await writeFile(join(vol, 'etc/fstab'), big("the volume's own fstab"));
    await writeFile(join(vol, 'boot/grub/menu.lst'), big("the volume's own menu.lst"));
    await writeFile(join(vol, 'boot/grub/grub.conf'), big("the volume's own grub.conf"));
    await writeFile(join(vol, 'dev/null'), big('a regular file where the image gets a device node'));
    await writeFile(join(vol, 'etc/hostname'), 'linked\n');
    await writeImage(join(vol, 'usr/lib/big.bin'), { size: 2 << 20, mode: '0644', mtime: 1_600_000_000, sparse: false, layout: [{ kind: 'random', label: 'linked', length: 2 << 20 }] });
    menu = join(work, 'linked-menu.lst');
    await writeFile(menu, 'default 0\ntimeout 0\ntitle Linked\nroot (hd0,0)\nkernel /vmlinuz root=UUID=x ro\n');
    before = await snapshot();
  });

  async function expectVolumeUntouched(): Promise<void> {
    const after = await snapshot();
    for (const p of WATCHED) {
      expect(after.get(p)!.content.equals(before.get(p)!.content), `${p}: content`).toBe(true);
      expect(after.get(p)).toMatchObject({ ino: before.get(p)!.ino, nlink: before.get(p)!.nlink, mtimeMs: before.get(p)!.mtimeMs });
    }
  }

  it('links the large files, writes fstab, GRUB menus and /dev nodes as new files: the image has them, the volume not', async () => {
    const out = await freshDir();
    const run = runCli('ec2-bundle-vol', ['-v', vol, '-d', out, '--no-inherit', '--clone-only', '-P', 'mbr', '-s', '16', '--generate-fstab', '--grub-config', menu, '--debug']);
    // While the staging tree exists, the volume's large file has a second name: the staged one.
    let links = 1;
    let finished = false;
    void run.finally(() => (finished = true));
    while (!finished) {
      links = Math.max(links, (await stat(join(vol, 'usr/lib/big.bin'))).nlink);
      await new Promise((res) => setTimeout(res, 5));
    }
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`DEBUG: staging by hard links to the volume's files (files under ${32 * KiB} bytes are copied)`);
    expect(links).toBe(2);
    await expectVolumeUntouched();
    const img = new ExtImage(join(out, 'image'), 1024 * 1024);
    expect(img.cat('/etc/fstab').toString()).toMatch(/^UUID=[0-9a-f-]+\t\/\text4\t/);
    expect(img.cat('/boot/grub/menu.lst').toString()).toBe(await readFile(menu, 'utf8'));
    expect(img.cat('/boot/grub/grub.conf').toString()).toBe(await readFile(menu, 'utf8'));
    expect(img.stat('/dev/null')).toMatchObject({ type: 'character special', rdev: [1, 3] });
    expect(img.cat('/usr/lib/big.bin').equals(before.get('usr/lib/big.bin')!.content)).toBe(true);
    expect(img.stat('/usr/lib/big.bin')).toMatchObject({ links: 1, mtime: 1_600_000_000 });
    expect(img.cat('/etc/hostname').toString()).toBe('linked\n');
    expect((await readdir(out)).sort()).toEqual(['image']); // the staging tree is gone
  });

  it('copies instead when a -S script runs: a script writing into a file changes only the image', async () => {
    const out = await freshDir();
    const script = join(work, 'append.sh');
    await writeFile(script, '#!/bin/sh\nset -e\necho appended >> "$1/usr/lib/big.bin"\necho "# appended" >> "$1/etc/fstab"\n');
    await chmod(script, 0o755);
    const r = await runCli('ec2-bundle-vol', ['-v', vol, '-d', out, '--no-inherit', '--clone-only', '-P', 'none', '-s', '16', '-S', script, '--debug']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('DEBUG: staging by copying');
    await expectVolumeUntouched();
    const img = new ExtImage(join(out, 'image'), 0);
    expect(img.cat('/usr/lib/big.bin').equals(Buffer.concat([before.get('usr/lib/big.bin')!.content, Buffer.from('appended\n')]))).toBe(true);
    expect(img.cat('/etc/fstab').toString()).toBe(`${before.get('etc/fstab')!.content.toString()}# appended\n`);
  });
});
