import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectImageFileVirtualization } from '../../src/bundle/virtualization.js';
import { planBoot } from '../../src/volume/bootloader.js';
import { planLayout } from '../../src/volume/disk-layout.js';
import { installPartition, legacyFeatures, patchStage1, patchStage15 } from '../../src/volume/grub-legacy.js';
import { grubShellSetup, LEGACY_STAGES } from '../helpers/grub-legacy.js';
import { runCli } from '../helpers/run.js';
import { unmetPrerequisite } from '../helpers/paths.js';

const MiB = 1024 * 1024;

/** A stand-in stage1: version 3.2, the drive-check jump, code bytes elsewhere, no partition table. */
function fakeStage1(): Buffer {
  const b = Buffer.alloc(512, 0xcc);
  b.fill(0, 0x3, 0x3e);
  b[0x3e] = 3; b[0x3f] = 2;
  b[0x4b] = 0xeb; b[0x4c] = 0x07;
  b.fill(0, 0x1b8, 0x1fe);
  b[0x1fe] = 0x55; b[0x1ff] = 0xaa;
  return b;
}

/** A disk's sector 0: BPB-area bytes, disk signature and one partition entry. */
function oldMbr(): Buffer {
  const b = Buffer.alloc(512);
  b.fill(0x11, 0x3, 0x3e);
  b.writeUInt32LE(0xdeadbeef, 0x1b8);
  b.fill(0x83, 0x1be, 0x1ce);
  b[0x1fe] = 0x55; b[0x1ff] = 0xaa;
  return b;
}

/** A stand-in e2fs_stage1_5 of 2.5 sectors laid out like GRUB 0.97's. */
function fakeStage15(): Buffer {
  const b = Buffer.alloc(1280, 0xcc);
  b.writeUInt32LE(2, 0x1f8); b.writeUInt16LE(0, 0x1fc); b.writeUInt16LE(0x220, 0x1fe);
  b[0x206] = 3; b[0x207] = 2;
  b.fill(0, 0x208, 0x270);
  b.write('0.97\0', 0x212, 'latin1');
  b.writeUInt32LE(0xffffffff, 0x217);
  b.write('/boot/grub/stage2\0', 0x21b, 'latin1');
  return b;
}

describe('legacy GRUB sector patching', () => {
  it('patches stage1 to load stage1.5 from sector 1, keeping the BPB, disk signature and partition table', () => {
    const out = patchStage1(fakeStage1(), oldMbr(), 1);
    expect(out.length).toBe(512);
    expect(out.subarray(0x3, 0x3e).every((x) => x === 0x11)).toBe(true);
    expect([out[0x40], out[0x41]]).toEqual([0xff, 0]);
    expect(out.readUInt16LE(0x42)).toBe(0x2000);
    expect(out.readUInt32LE(0x44)).toBe(1);
    expect(out.readUInt16LE(0x48)).toBe(0x200);
    expect([out[0x4b], out[0x4c]]).toEqual([0x90, 0x90]);
    expect(out.readUInt32LE(0x1b8)).toBe(0xdeadbeef);
    expect(out.subarray(0x1be, 0x1ce).every((x) => x === 0x83)).toBe(true);
    expect([out[0x1fe], out[0x1ff]]).toEqual([0x55, 0xaa]);
    expect(out.subarray(0, 3)).toEqual(fakeStage1().subarray(0, 3));
  });

  it('refuses a stage1 that is not GRUB 0.9x', () => {
    expect(() => patchStage1(Buffer.alloc(400), oldMbr(), 1)).toThrow(/400 bytes/);
    const s = fakeStage1();
    s[0x3e] = 4;
    expect(() => patchStage1(s, oldMbr(), 1)).toThrow(/version 4\.2/);
  });

  it('patches stage1.5: the rest of itself, the partition of stage2, stage2 and menu.lst paths', () => {
    const out = patchStage15(fakeStage15(), 1, 0, '/boot/grub/stage2', '/boot/grub/menu.lst');
    expect(out.length).toBe(3 * 512);
    expect(out.readUInt32LE(0x1f8)).toBe(2);
    expect(out.readUInt16LE(0x1fc)).toBe(2);
    expect(out.readUInt16LE(0x1fe)).toBe(0x220);
    expect([...out.subarray(0x217, 0x21b)]).toEqual([0xff, 0xff, 0x00, 0xff]);
    const end = out.indexOf(0, 0x21b);
    expect(out.toString('latin1', 0x21b, end)).toBe('/boot/grub/stage2 /boot/grub/menu.lst');
    expect(out.subarray(end, 0x270).every((x) => x === 0)).toBe(true);
    expect(out.subarray(0x270, 1280)).toEqual(fakeStage15().subarray(0x270));
    expect(out.subarray(1280).every((x) => x === 0)).toBe(true);
  });

  it('refuses paths that overflow the field, and a file that is not a stage 1.5', () => {
    expect(() => patchStage15(fakeStage15(), 1, 0, '/boot/grub/' + 'x'.repeat(60), '/boot/grub/menu.lst')).toThrow(/too long/);
    expect(() => patchStage15(Buffer.alloc(1024), 1, 0, '/a', '/b')).toThrow(/not a GRUB 0\.9x stage 1\.5/);
  });

  it('encodes (hd0,N) as the install partition word', () => {
    expect(installPartition(0)).toBe(0xff00ffff);
    expect(installPartition(1)).toBe(0xff01ffff);
  });

  it('drops only the ext4 features newer than legacy GRUB', () => {
    expect(legacyFeatures('ext4')).toBe('^64bit,^metadata_csum');
    expect(legacyFeatures('ext3')).toBeUndefined();
  });
});

describe('boot code decision', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'amitools-bootplan-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  async function tree(name: string, files: string[]): Promise<string> {
    const root = join(dir, name);
    for (const f of files) {
      await mkdir(join(root, f, '..'), { recursive: true });
      await writeFile(join(root, f), 'x');
    }
    await mkdir(join(root, 'boot'), { recursive: true });
    return root;
  }
  const legacy = ['boot/grub/stage1', 'boot/grub/stage2', 'boot/grub/e2fs_stage1_5', 'boot/grub/menu.lst'];

  async function plan(root: string, scheme: 'mbr' | 'gpt' | 'none') {
    const warnings: string[] = [];
    const p = await planBoot(root, planLayout(scheme, 64), (s) => warnings.push(s));
    return { kind: p.kind, warnings, stageDir: p.stageDir };
  }

  it('GRUB 2 modules win over legacy stage files', async () => {
    const root = await tree('both', [...legacy, 'boot/grub/i386-pc/normal.mod', 'boot/grub/grub.cfg']);
    expect(await plan(root, 'mbr')).toMatchObject({ kind: 'grub2', warnings: [] });
  });

  it('legacy stage files → legacy GRUB on an MBR disk, without warnings', async () => {
    const root = await tree('legacy', legacy);
    expect(await plan(root, 'mbr')).toEqual({ kind: 'legacy', warnings: [], stageDir: join(root, 'boot/grub') });
  });

  it('legacy GRUB without menu.lst is installed with a warning', async () => {
    const root = await tree('nomenu', legacy.slice(0, 3));
    const p = await plan(root, 'mbr');
    expect(p.kind).toBe('legacy');
    expect(p.warnings).toEqual([expect.stringMatching(/^WARNING: No \/boot\/grub\/menu\.lst/)]);
  });

  it('legacy GRUB needs e2fs_stage1_5 and an MBR: otherwise PV only, with a warning', async () => {
    const no15 = await tree('no15', ['boot/grub/stage1', 'boot/grub/stage2', 'boot/grub/menu.lst']);
    expect(await plan(no15, 'mbr')).toMatchObject({ kind: 'none', warnings: [expect.stringMatching(/no \/boot\/grub\/e2fs_stage1_5.*PV/)] });
    const root = await tree('gpt', legacy);
    expect(await plan(root, 'gpt')).toMatchObject({ kind: 'none', warnings: [expect.stringMatching(/only MBR.*-P mbr/)] });
    expect(await plan(root, 'none')).toMatchObject({ kind: 'none', warnings: [expect.stringMatching(/No partition table/)] });
  });

  it('no GRUB at all → PV only, with a warning', async () => {
    const root = await tree('nogrub', ['etc/fstab']);
    expect(await plan(root, 'mbr')).toMatchObject({ kind: 'none', warnings: [expect.stringMatching(/No GRUB found/)] });
  });
});

// The oracle: GRUB 0.97's own shell, run as the original ec2-bundle-vol ran it, on a copy of our image.
const unmet = unmetPrerequisite('legacy GRUB shell comparison', { slow: true, root: true, commands: ['rsync', 'mke2fs', 'sfdisk'] })
  ?? (existsSync(join(LEGACY_STAGES, 'e2fs_stage1_5')) ? undefined : `GRUB 0.97 missing in ${LEGACY_STAGES}`);
describe.skipIf(unmet !== undefined)('legacy GRUB boot code matches the grub shell byte for byte', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'amitools-legacy-'));
  });
  afterAll(async () => { if (work) await rm(work, { recursive: true, force: true }); });

  it('ec2-bundle-vol -P mbr writes what `setup (hd0)` writes; the grub shell reads the filesystem', async () => {
    const vol = join(work, 'vol');
    await mkdir(join(vol, 'boot', 'grub'), { recursive: true });
    for (const f of ['stage1', 'stage2', 'e2fs_stage1_5']) await copyFile(join(LEGACY_STAGES, f), join(vol, 'boot', 'grub', f));
    await writeFile(join(vol, 'boot', 'grub', 'menu.lst'), 'default 0\ntimeout 0\ntitle t\nroot (hd0,0)\nkernel /boot/vmlinuz root=/dev/xvda1\n');
    for (let i = 0; i < 50; i++) await writeFile(join(vol, `file-${i}`), `content ${i}\n`.repeat(1000 * i));
    const out = join(work, 'out');
    await mkdir(out);

    const r = await runCli('ec2-bundle-vol', ['-v', vol, '-d', out, '-P', 'mbr', '-s', '64', '--no-inherit', '--clone-only', '--batch']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ours = join(out, 'image');
    const theirs = join(out, 'image.grub');
    await copyFile(ours, theirs);
    const shell = grubShellSetup(theirs, join(work, 'device.map'));
    expect(shell).toMatch(/embed \/boot\/grub\/e2fs_stage1_5 \(hd0\)"\.\.\. +19 sectors are embedded/);

    const head = async (p: string) => {
      const fh = await open(p, 'r');
      try {
        const b = Buffer.alloc(MiB);
        await fh.read(b, 0, MiB, 0);
        return b;
      } finally {
        await fh.close();
      }
    };
    const [a, b] = await Promise.all([head(ours), head(theirs)]);
    const differing = [...Array(MiB / 512).keys()].filter((s) => !a.subarray(s * 512, s * 512 + 512).equals(b.subarray(s * 512, s * 512 + 512)));
    expect(differing, 'sectors that differ from the grub shell\'s').toEqual([]);
    // The stage files are really there: sector 0 is stage1, sector 1 stage1.5's first sector (both patched).
    const stage1 = await readFile(join(LEGACY_STAGES, 'stage1'));
    expect(a.subarray(0, 0x3e)).toEqual(stage1.subarray(0, 0x3e));
    expect(a.readUInt32LE(0x44)).toBe(1);
    // …and the grub shell left the filesystem as it was (stage2 is read, never rewritten).
    expect(execFileSync('cmp', [ours, theirs]).toString()).toBe('');
    // What --register would send for it: an MBR disk with boot code is hvm.
    expect(await detectImageFileVirtualization(ours)).toEqual({ type: 'hvm', reason: 'an MBR disk with boot code' });

    const features = execFileSync('dumpe2fs', ['-h', `${ours}?offset=${MiB}`], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const list = /Filesystem features:\s+(.*)/.exec(features)![1].split(' ');
    expect(list).toContain('extent');
    expect(list).not.toContain('64bit');
    expect(list).not.toContain('metadata_csum');
  });
});
