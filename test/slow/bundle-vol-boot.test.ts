import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadManifest } from '../../src/bundle/manifest-file.js';
import { detectBundleVirtualization } from '../../src/bundle/virtualization.js';
import { DirectoryStore } from '../../src/store/directory-store.js';
import { key, unmetPrerequisite } from '../helpers/paths.js';
import { promisify } from 'node:util';
import { runCli } from '../helpers/run.js';
import { partitionTable } from '../helpers/volume-debugfs.js';
import { BOOT_MARKER, bootImage, bootTestScript, ensureDebianTree } from '../helpers/volume-debian.js';
import { LEGACY_STAGES } from '../helpers/grub-legacy.js';

/**
 * A -S script turning the staged Debian tree into a legacy-GRUB volume: the test init, no GRUB 2 (modules and
 * grub.cfg removed), GRUB 0.97's stage files from the grub-legacy package in /boot/grub and a menu.lst.
 */
function legacyBootScript(): string {
  return `${bootTestScript()}
rm -rf "$T/usr/lib/grub/i386-pc" "$T/boot/grub/i386-pc" "$T/boot/grub/grub.cfg"
cp ${LEGACY_STAGES}/stage1 ${LEGACY_STAGES}/stage2 ${LEGACY_STAGES}/e2fs_stage1_5 "$T/boot/grub/"
K=$(cd "$T/boot" && ls vmlinuz-* | head -n1)
cat > "$T/boot/grub/menu.lst" <<MENU
default 0
timeout 0
title amitools legacy GRUB boot test
root (hd0,0)
kernel /boot/$K root=/dev/vda1 ro console=ttyS0 init=/sbin/boot-marker panic=-1
initrd /boot/initrd.img-\${K#vmlinuz-}
MENU
`;
}

const execAsync = promisify(execFile);

const BUNDLE_FLAGS = ['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--batch'];

// The proof: a real Debian root filesystem, bundled by ec2-bundle-vol and unbundled, boots from its own MBR
// (GRUB 2, or legacy GRUB when the volume has only its stage files).
const unmet = unmetPrerequisite('boot test', { slow: true, root: true, commands: ['debootstrap', 'qemu-system-x86_64', 'mke2fs', 'sfdisk', 'rsync', 'grub-mkimage'] });
describe.skipIf(unmet !== undefined)('ec2-bundle-vol: the unbundled image boots (debootstrap + qemu)', () => {
  let work: string;
  let tree: string;

  beforeAll(async () => {
    expect(process.getuid?.(), 'debootstrap and ec2-bundle-vol need root').toBe(0);
    const t0 = Date.now();
    tree = ensureDebianTree();
    console.log(`debian tree ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    work = await mkdtemp(join(tmpdir(), 'amitools-boot-'));
  }, 900_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** ec2-bundle-vol -P mbr with a -S script, ec2-unbundle, then a BIOS boot of the unbundled disk; the console. */
  async function bundleUnbundleBoot(name: string, scriptText: string): Promise<string> {
    const out = join(work, `${name}-bundle`);
    const unbundled = join(work, `${name}-unbundled`);
    await mkdir(out);
    await mkdir(unbundled);
    const script = join(work, `${name}.sh`);
    await writeFile(script, scriptText, { mode: 0o755 });

    let t = Date.now();
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '-P', 'mbr', '-s', '1024', '--no-inherit', '-S', script, ...BUNDLE_FLAGS]);
    expect(r.stderr.split('\n').filter((l) => /^(ERROR|WARNING)/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
    console.log(`ec2-bundle-vol (${name}): ${((Date.now() - t) / 1000).toFixed(1)} s`);
    // Only the bundle and the image: the staging directory is gone.
    expect((await readdir(out)).filter((n) => !n.startsWith('image.part.')).sort()).toEqual(['image', 'image.manifest.xml']);
    // What ec2-upload-bundle --register -k sends for it, read from the bundle's first part only: hvm.
    const { manifest } = await loadManifest({ path: join(out, 'image.manifest.xml') }, new DirectoryStore(out));
    expect(await detectBundleVirtualization({ manifest, source: new DirectoryStore(out), privateKeyPath: key('user-key.pem') }))
      .toEqual({ type: 'hvm', reason: 'an MBR disk with boot code' });
    await rm(join(out, 'image'));

    t = Date.now();
    const u = await runCli('ec2-unbundle', ['-k', key('user-key.pem'), '-m', join(out, 'image.manifest.xml'), '-s', out, '-d', unbundled]);
    expect(u.code).toBe(0);
    console.log(`ec2-unbundle (${name}): ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await rm(out, { recursive: true });

    const image = join(unbundled, 'image');
    expect(partitionTable(image)).toMatchObject({ label: 'dos', partitions: [{ start: 2048, type: '83', bootable: true }] });

    t = Date.now();
    const boot = await bootImage(image, 240_000);
    console.log(`qemu boot (${name}) to the marker and power-off: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await rm(unbundled, { recursive: true });
    const tail = boot.console.slice(-3000);
    expect(boot.timedOut, `qemu did not power off in time; console tail:\n${tail}`).toBe(false);
    expect(boot.console, `console tail:\n${tail}`).toContain(BOOT_MARKER);
    const rootLine = /ROOTLINE: (\S+) \/ (\S+)/.exec(boot.console);
    expect(rootLine, `console tail:\n${tail}`).not.toBeNull();
    expect(rootLine![1]).toBe('/dev/vda1');
    expect(rootLine![2]).toBe('ext4');
    return boot.console;
  }

  it('bundles with -P mbr, unbundles, and boots under qemu with the root on the first partition', async () => {
    await bundleUnbundleBoot('grub2', bootTestScript());
  }, 900_000);

  it('boots through legacy GRUB 0.97 when the volume has its stage files instead of GRUB 2', async () => {
    expect(existsSync(join(LEGACY_STAGES, 'e2fs_stage1_5')), `GRUB 0.97 stage files missing in ${LEGACY_STAGES}: apt-get install grub-legacy`).toBe(true);
    // GRUB's menu redraws with cursor moves that can fall inside a word: read the console without escape sequences.
    const text = (await bundleUnbundleBoot('legacy', legacyBootScript())).replace(/\x1b(\[[0-9;?]*[A-Za-z]|c)/g, '');
    // What booted is GRUB 0.97: stage1 → the embedded stage1.5 → stage2 from the filesystem, reading menu.lst.
    expect(text).toContain('GRUB Loading stage1.5.');
    expect(text).toMatch(/GNU GRUB {2}version 0\.97/);
    expect(text).toContain("Booting 'amitools legacy GRUB boot test'");
  }, 900_000);

  it('boots a -P gpt clone staged by hard links (GRUB core image in the BIOS boot partition); the volume is untouched', async () => {
    // A volume of its own on the filesystem of -d, with the test init and grub.cfg in it, and no -S: the staging
    // tree links the volume's files, and --generate-fstab replaces one of them.
    const volume = join(work, 'linked-volume');
    await execAsync('cp', ['-a', '--reflink=auto', `${tree}/.`, volume]);
    const script = join(work, 'add-boot-test.sh');
    await writeFile(script, bootTestScript(), { mode: 0o755 });
    await execAsync(script, [volume]);
    const fstab = await readFile(join(volume, 'etc', 'fstab'));
    const out = join(work, 'clone-gpt');
    await mkdir(out);
    let t = Date.now();
    const r = await runCli('ec2-bundle-vol', ['-v', volume, '-d', out, '-P', 'gpt', '-s', '1024', '--no-inherit', '--clone-only', '--generate-fstab', '--batch', '--debug']);
    expect(r.stderr.split('\n').filter((l) => /^(ERROR|WARNING)/.test(l))).toEqual([]);
    expect(r.stderr).toContain('DEBUG: staging by hard links');
    expect(r.code).toBe(0);
    expect((await readFile(join(volume, 'etc', 'fstab'))).equals(fstab)).toBe(true);
    await rm(volume, { recursive: true });
    console.log(`ec2-bundle-vol --clone-only -P gpt, staged by hard links: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const image = join(out, 'image');
    expect(partitionTable(image)).toMatchObject({ label: 'gpt', partitions: [{ start: 4096 }, { start: 2048, size: 2048 }] });
    t = Date.now();
    const boot = await bootImage(image, 240_000);
    console.log(`qemu boot (gpt): ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const tail = boot.console.slice(-3000);
    expect(boot.timedOut, `qemu did not power off in time; console tail:\n${tail}`).toBe(false);
    expect(/ROOTLINE: (\S+) \/ ext4/.exec(boot.console)?.[1], `console tail:\n${tail}`).toBe('/dev/vda1');
    await rm(out, { recursive: true });
  }, 900_000);
});
