import { execFile } from 'node:child_process';
import { cp, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ToolError } from '../errors.js';
import type { DiskLayout } from './disk-layout.js';
import { LEGACY_STAGE_FILES } from './grub-legacy.js';
import type { TargetFilesystem } from './mkfs.js';

const run = promisify(execFile);
const SECTOR = 512;

// Offsets in GRUB 2's i386-pc boot.img (boot.S) and in the first sector of core.img (diskboot.S).
const BOOT_KERNEL_SECTOR = 0x5c;
const BOOT_DRIVE_CHECK = 0x66;
const BOOT_CODE_END = 0x1b8; // disk signature and partition table follow: never overwritten
const CORE_BLOCKLIST = 0x200 - 12; // start (u64), sectors (u16), segment (u16)
const CORE_SEGMENT = 0x820;

/** The modules the core image carries; the rest load from /boot/grub/i386-pc at boot. */
const CORE_MODULES = ['biosdisk', 'part_msdos', 'part_gpt', 'ext2', 'normal', 'configfile', 'linux', 'search',
  'search_fs_uuid', 'search_label', 'echo', 'test'];

export type BootKind = 'grub2' | 'legacy' | 'none';

export interface BootPlan {
  kind: BootKind;
  /** GRUB 2's i386-pc directory in the staging tree (the image's /boot/grub/i386-pc). */
  modulesDir?: string;
  /** Legacy GRUB: /boot/grub of the staging tree, holding stage1, e2fs_stage1_5 (and stage2, menu.lst). */
  stageDir?: string;
}

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

/** The files whose kernel command lines say root=…: GRUB 2's and legacy GRUB's (PV-GRUB reads menu.lst). */
export const BOOT_CONFIGS = ['boot/grub/grub.cfg', 'boot/grub2/grub.cfg', 'boot/grub/menu.lst', 'boot/grub/grub.conf'];

/** root= values on linux/kernel lines of a grub config. */
export function kernelRootArgs(config: string): string[] {
  const out: string[] = [];
  for (const line of config.split('\n')) {
    if (!/^\s*(linux|linux16|linuxefi|kernel)\s/.test(line)) continue;
    const m = /(?:^|\s)root=(\S+)/.exec(line);
    if (m) out.push(m[1].replace(/^["']|["']$/g, ''));
  }
  return out;
}

/** Whether a root= value names a device the image will have when booted (its label, UUID, or partition 1). */
export function rootWillExist(value: string, fs: TargetFilesystem, scheme: DiskLayout['scheme']): boolean {
  const v = value;
  const eq = (a: string | undefined, b: string | undefined) => a !== undefined && b !== undefined && a.toLowerCase() === b.toLowerCase();
  if (/^UUID=/i.test(v) || v.startsWith('/dev/disk/by-uuid/')) return eq(v.replace(/^UUID=|^\/dev\/disk\/by-uuid\//i, ''), fs.uuid);
  if (/^LABEL=/i.test(v) || v.startsWith('/dev/disk/by-label/')) return fs.label !== undefined && v.replace(/^LABEL=|^\/dev\/disk\/by-label\//i, '') === fs.label;
  // EC2 attaches a partition-less image as sda1/xvda1 (PV); a partitioned one's root is partition 1 of the disk.
  if (/^\/dev\/(?:xv|s|v|h)da1$/.test(v) || /^\/dev\/nvme0n1p1$/.test(v)) return true;
  if (scheme === 'none' && /^\/dev\/(?:xv|s|v|h)da$/.test(v)) return true;
  return false;
}

/** Warnings for root= values in the staged boot configs that will not exist in the image. */
export async function checkRootDevices(staging: string, fs: TargetFilesystem, scheme: DiskLayout['scheme']): Promise<string[]> {
  const warnings: string[] = [];
  for (const rel of BOOT_CONFIGS) {
    let text: string;
    try { text = await readFile(join(staging, rel), 'utf8'); } catch { continue; }
    for (const root of new Set(kernelRootArgs(text))) {
      if (!rootWillExist(root, fs, scheme)) {
        const names = [fs.label ? `LABEL=${fs.label}` : undefined, `UUID=${fs.uuid}`, '/dev/xvda1'].filter(Boolean).join(', ');
        warnings.push(`WARNING: /${rel} boots with root=${root}, which will not exist in the image; the image's root is ${names}.`);
      }
    }
  }
  return warnings;
}

/**
 * Decides the boot code from what the volume carries: GRUB 2 i386-pc modules (copied to /boot/grub/i386-pc as
 * grub-install would, when only the package's copy exists), else legacy GRUB stage files in /boot/grub (stage1,
 * stage2, e2fs_stage1_5; MBR only, as GRUB 0.97 reads no GPT), else none (PV only).
 */
export async function planBoot(staging: string, layout: DiskLayout, warn: (s: string) => void): Promise<BootPlan> {
  const bootDir = join(staging, 'boot', 'grub', 'i386-pc');
  const pkgDir = join(staging, 'usr', 'lib', 'grub', 'i386-pc');
  const hasGrub2 = (await exists(join(bootDir, 'normal.mod'))) || (await exists(join(pkgDir, 'normal.mod')));
  const grubDir = join(staging, 'boot', 'grub');
  const legacyFiles = await Promise.all(LEGACY_STAGE_FILES.map((f) => exists(join(grubDir, f))));
  const hasLegacy = legacyFiles[0] && legacyFiles[1];
  if (layout.scheme === 'none') {
    if (hasGrub2 || hasLegacy) warn('WARNING: No partition table (-P none): no room for boot code; the image will boot only as PV (PV-GRUB reads /boot/grub/menu.lst).');
    else warn('WARNING: No GRUB found on the volume: the image will boot only as PV (PV-GRUB reads /boot/grub/menu.lst).');
    return { kind: 'none' };
  }
  if (hasGrub2) {
    if (!(await exists(join(bootDir, 'normal.mod')))) await cp(pkgDir, bootDir, { recursive: true, preserveTimestamps: true });
    const cfg = join(staging, 'boot', 'grub', 'grub.cfg');
    const menu = join(staging, 'boot', 'grub', 'menu.lst');
    if (!(await exists(cfg))) {
      if (await exists(menu)) {
        // The legacy menu PV-GRUB reads also serves GRUB 2 on HVM.
        await writeFile(cfg, 'insmod legacycfg\nlegacy_configfile /boot/grub/menu.lst\n', { mode: 0o644 });
        warn('WARNING: No /boot/grub/grub.cfg: wrote one that reads /boot/grub/menu.lst.');
      } else {
        warn('WARNING: No /boot/grub/grub.cfg or menu.lst on the volume: GRUB 2 will stop at its prompt.');
      }
    }
    return { kind: 'grub2', modulesDir: bootDir };
  }
  if (hasLegacy) {
    if (!legacyFiles[2]) {
      warn('WARNING: Legacy GRUB stage1 and stage2 found but no /boot/grub/e2fs_stage1_5: no HVM boot code installed; the image will boot only as PV (PV-GRUB reads /boot/grub/menu.lst).');
      return { kind: 'none' };
    }
    if (layout.scheme !== 'mbr') {
      warn('WARNING: Legacy GRUB reads only MBR partition tables: no HVM boot code installed with -P gpt; the image will boot only as PV (use -P mbr for HVM).');
      return { kind: 'none' };
    }
    if (!(await exists(join(grubDir, 'menu.lst')))) warn('WARNING: No /boot/grub/menu.lst on the volume: legacy GRUB will stop at its prompt.');
    return { kind: 'legacy', stageDir: grubDir };
  }
  warn('WARNING: No GRUB found on the volume: the image will boot only as PV (PV-GRUB reads /boot/grub/menu.lst).');
  return { kind: 'none' };
}

/** boot.img patched to load core.img from `coreSector`, as grub-bios-setup does for a hard disk. */
export function patchBootSector(bootImg: Buffer, coreSector: number): Buffer {
  if (bootImg.length !== SECTOR) throw new ToolError(`GRUB's boot.img is ${bootImg.length} bytes, expected 512`);
  const b = Buffer.from(bootImg);
  b.writeBigUInt64LE(BigInt(coreSector), BOOT_KERNEL_SECTOR);
  // Trust the drive number the BIOS passes (jump → two NOPs), as grub-bios-setup does for hard disks.
  b[BOOT_DRIVE_CHECK] = 0x90;
  b[BOOT_DRIVE_CHECK + 1] = 0x90;
  return b.subarray(0, BOOT_CODE_END);
}

/** core.img's first sector (diskboot) told where the rest of itself lies. */
export function patchCoreBlocklist(coreImg: Buffer, coreSector: number): Buffer {
  const c = Buffer.from(coreImg);
  const sectors = Math.ceil(c.length / SECTOR);
  c.writeBigUInt64LE(BigInt(coreSector + 1), CORE_BLOCKLIST);
  c.writeUInt16LE(sectors - 1, CORE_BLOCKLIST + 8);
  c.writeUInt16LE(CORE_SEGMENT, CORE_BLOCKLIST + 10);
  return c;
}

/**
 * Installs GRUB 2 for BIOS boot into an image file: grub-mkimage builds the core image from the volume's own
 * modules, which goes into the MBR gap (or the BIOS boot partition); boot.img in sector 0 loads it.
 * (grub-bios-setup refuses image files.)
 */
export async function installGrub2(image: string, layout: DiskLayout, modulesDir: string): Promise<void> {
  const area = layout.coreArea;
  if (!area) throw new ToolError('No room for GRUB 2 without a partition table');
  const part = layout.scheme === 'gpt' ? 'gpt1' : 'msdos1';
  const tmp = await mkdtemp(join(tmpdir(), 'amitools-grub-'));
  try {
    const corePath = join(tmp, 'core.img');
    try {
      await run('grub-mkimage', ['-O', 'i386-pc', '-d', modulesDir, '-p', `(hd0,${part})/boot/grub`, '-o', corePath, ...CORE_MODULES]);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      throw new ToolError(e.code === 'ENOENT'
        ? 'grub-mkimage is not installed: install the grub-common package (or bundle with -P none for PV only)'
        : `grub-mkimage failed: ${(e.stderr ?? e.message).trim().split('\n').pop()}`);
    }
    const core = await readFile(corePath);
    if (core.length > area.bytes) throw new ToolError(`GRUB's core image (${core.length} bytes) does not fit in the ${area.bytes} bytes before the root partition`);
    const coreSector = area.start / SECTOR;
    const boot = patchBootSector(await readFile(join(modulesDir, 'boot.img')), coreSector);
    const fh = await open(image, 'r+');
    try {
      await fh.write(patchCoreBlocklist(core, coreSector), 0, core.length, area.start);
      await fh.write(boot, 0, boot.length, 0);
    } finally {
      await fh.close();
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
