import { lstat, mkdtemp, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ToolError } from '../errors.js';
import { StagedFiles, sweepStaleTemporaries } from '../stream/atomic-write.js';
import { installGrub2, checkRootDevices, planBoot, type BootKind } from './bootloader.js';
import { installGrubLegacy, legacyFeatures } from './grub-legacy.js';
import { detectScheme, planLayout, writePartitionTable, type DiskLayout, type PartitionScheme } from './disk-layout.js';
import { filesystemCapacity, makeFilesystem, targetFilesystem, type TargetFilesystem } from './mkfs.js';
import { mountOf, nonLocalMountsUnder, readMounts } from './mounts.js';
import { ALWAYS_EMPTIED, buildSelection, volumeRelative, type FilterHit } from './select.js';
import { applyFstab, applyGrubConfig, copyToStaging, LINK_MIN_SIZE, listSelection, measureSelection, prepareSpecialDirs, runScript } from './stage.js';

export interface BuildImageOptions {
  /** The volume to copy (a directory; realpath'd here). */
  volume: string;
  /** -d: the image and the staging directory go here. */
  destination: string;
  /** The image file's name in the destination. */
  prefix: string;
  sizeMB: number;
  /** -P; undefined: the volume's parent disk's table type. */
  scheme?: PartitionScheme;
  excludes: string[];
  includes: string[];
  filter: boolean;
  all: boolean;
  fstab?: string;
  generateFstab?: boolean;
  grubConfig?: string;
  script?: string;
  line: (s: string) => void;
  warn: (s: string) => void;
  debug?: (s: string) => void;
  /** Stops the work (and the programs it runs): the staging directory and the partial image are removed. */
  signal?: AbortSignal;
}

export interface BuildImageResult {
  imagePath: string;
  layout: DiskLayout;
  fs: TargetFilesystem;
  filtered: FilterHit[];
  boot: BootKind;
}

const MiB = 1024 * 1024;

/**
 * Turns a mounted volume into a disk image without mounting anything: rsync the chosen files into a staging
 * directory (hard links to the volume's files where it can), add /dev nodes, fstab, grub config, run -S; write the
 * partition table, mke2fs -d at the partition's offset, GRUB 2 or legacy GRUB boot code. The size is checked before
 * anything is copied; on failure nothing is left behind.
 */
export async function buildImage(o: BuildImageOptions): Promise<BuildImageResult> {
  const debug = o.debug ?? (() => {});
  const volume = await realpath(o.volume);
  const destination = await realpath(o.destination);
  const imagePath = join(destination, o.prefix);
  if (await lstat(imagePath).then(() => true, () => false)) {
    throw new ToolError(`the specified image file ${imagePath} already exists`);
  }

  const mounts = await readMounts();
  const volMount = mountOf(volume, mounts);
  const emptied: string[] = [];
  if (!o.all) {
    for (const m of nonLocalMountsUnder(volume, mounts)) emptied.push(volumeRelative(volume, m)!);
  }
  const destRel = volumeRelative(volume, destination);
  if (destRel !== undefined) {
    if (destRel === '/') throw new ToolError(`the destination ${destination} is the volume itself: choose a directory inside it or elsewhere`, { option: 'destination' });
    emptied.push(destRel);
  }

  let scheme = o.scheme;
  if (!scheme) {
    const guess = volMount ? await detectScheme(volMount.device) : { scheme: 'gpt' as const, reason: 'the volume is not mounted' };
    scheme = guess.scheme;
    o.line(`Partition table: ${scheme} (${guess.reason}).`);
  }
  const layout = planLayout(scheme, o.sizeMB);
  const fs = await targetFilesystem(volume, volMount);
  for (const n of fs.notes) debug(n);

  const selection = buildSelection({ excludes: o.excludes, includes: o.includes, filter: o.filter, emptied });
  debug(`rsync filter rules: ${JSON.stringify(selection.rules)}`);
  o.line('Excluding:');
  for (const d of [...new Set([...ALWAYS_EMPTIED, ...emptied])].sort()) o.line(`\t ${d} (contents)`);
  for (const e of o.excludes) o.line(`\t ${e}`);

  const listing = await listSelection(volume, selection);
  if (listing.filtered.length) {
    o.line('Filtered (sensitive files; -i keeps one, --no-filter keeps all):');
    for (const f of listing.filtered) o.line(`\t ${f.path}${f.directory ? '/' : ''}  [${f.pattern}]`);
  }
  const need = await measureSelection(volume, listing.names);
  const cap = filesystemCapacity(layout.rootBytes, fs.type);
  debug(`files need ${need.bytes} bytes and ${need.inodes} inodes; the filesystem holds about ${cap.bytes} bytes and ${cap.inodes} inodes`);
  if (need.bytes > cap.bytes || need.inodes > cap.inodes) {
    const overhead = layout.imageBytes - cap.bytes;
    const suggest = Math.ceil((need.bytes * 1.1 + overhead) / MiB);
    throw new ToolError(need.bytes > cap.bytes
      ? `an image of ${o.sizeMB} MB is too small: the files need about ${Math.ceil(need.bytes / MiB)} MB; make it ${suggest} MB or more`
      : `an image of ${o.sizeMB} MB is too small for ${need.inodes} files (room for ${cap.inodes}); make it larger`, { option: 'sizeMB' });
  }

  await sweepStaleTemporaries(destination);
  // The image is a staged file; the staging directory is scratch of the same group: both go on failure or interrupt.
  const staged = new StagedFiles({ signal: o.signal });
  try {
    const staging = await mkdtemp(join(destination, `.${basename(o.prefix)}.staging-`));
    staged.addScratch(staging);
    // On the volume's filesystem the staging tree can share the volume's files instead of copying them; not when
    // a -S script runs on it, since a script may write into a file (and so into the live volume).
    const link = !o.script && (await stat(volume)).dev === (await stat(staging)).dev;
    debug(link ? `staging by hard links to the volume's files (files under ${LINK_MIN_SIZE} bytes are copied)` : 'staging by copying');
    o.line(`Copying ${volume} into the image file ${imagePath}...`);
    if (await copyToStaging(volume, staging, selection, link, o.signal)) o.warn('WARNING: some files vanished while copying (the volume is in use); the rest were copied.');
    await prepareSpecialDirs(staging);
    await applyFstab(staging, { fstab: o.fstab, generate: o.generateFstab ? { uuid: fs.uuid, fsType: fs.type } : undefined });
    if (o.grubConfig) await applyGrubConfig(staging, o.grubConfig);
    if (o.script) {
      o.line(`Running ${o.script} ${staging}...`);
      await runScript(o.script, staging, o.signal);
    }
    const boot = await planBoot(staging, layout, o.warn);
    for (const w of await checkRootDevices(staging, fs, layout.scheme)) o.warn(w);

    const { file, fh } = await staged.create(imagePath, { mode: 0o600 });
    try {
      await fh.truncate(layout.imageBytes);
    } finally {
      await fh.close();
    }
    const tmpImage = file.temp;
    await writePartitionTable(tmpImage, layout);
    await makeFilesystem({ image: tmpImage, staging, offset: layout.rootStart, bytes: layout.rootBytes, fs,
      features: boot.kind === 'legacy' ? legacyFeatures(fs.type) : undefined, signal: o.signal });
    if (boot.kind === 'grub2') await installGrub2(tmpImage, layout, boot.modulesDir!);
    if (boot.kind === 'legacy') await installGrubLegacy(tmpImage, layout, boot.stageDir!);
    o.signal?.throwIfAborted();
    await staged.commit();
    return { imagePath, layout, fs, filtered: listing.filtered, boot: boot.kind };
  } catch (err) {
    await staged.abort();
    throw err;
  }
}
