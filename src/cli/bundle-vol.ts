import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { Option } from 'commander';
import type { mergeInherited } from '../ec2/metadata.js';
import { missingMappingWarnings } from './bundle-options.js';
import { PLAIN_FILE_NAME_RULE, isPlainFileName } from '../format/part-name.js';
import { bundleVolume } from '../bundle/bundle-volume.js';
import { PARTITION_SCHEMES, type PartitionScheme } from '../volume/disk-layout.js';
import { isUnder } from '../volume/mounts.js';
import { addBundleFlags, directorySink, reportBundle, resolveBundleFlags, type BundleFlags } from './bundle-options.js';
import { addBundleS3Options, checkBundleS3Flags, openS3Sink, type BundleS3Flags } from './bundle-s3.js';
import { createCommand, invalidValue, markMandatory, requireDirectory, requireFile, runCommand, type CommonOptions } from './command.js';
import { ToolError, UsageError } from '../errors.js';
import { Reporter } from './reporter.js';

const NAME = 'ec2-bundle-vol';
export const MAX_SIZE_MB = 10 * 1024;

interface Flags extends BundleFlags, BundleS3Flags, CommonOptions {
  all?: boolean;
  exclude?: string[];
  include?: string[];
  filter: boolean;
  prefix: string;
  size: string;
  sizeChecks: boolean;
  inherit: boolean;
  volume: string;
  partition?: string;
  script?: string;
  fstab?: string;
  generateFstab?: boolean;
  grubConfig?: string;
  cloneOnly?: boolean;
}

/** -e/-i take comma-separated lists and may also be repeated. */
const list = (value: string, previous: string[] = []) => previous.concat(value.split(',').map((s) => s.trim()).filter(Boolean));

const command = () => markMandatory(addBundleS3Options(
  addBundleFlags(createCommand(NAME, 'Copy a mounted volume (by default /) into a bootable disk image and bundle it as an S3-backed AMI.'))
    .option('-a, --all', 'Include all directories in the volume, including those on remotely mounted filesystems.')
    .option('-e, --exclude <dir1,dir2,...>', 'A list of absolute directory paths (relative to the volume) to leave out entirely. Overrides --all.', list)
    .option('-i, --include <file1,file2,...>', 'A list of absolute file paths (relative to the volume) to keep although the sensitive-file filter would drop them.', list)
    .option('--no-filter', 'Do not leave out sensitive files (keys, certificates, shell history, editor backups).')
    .option('-p, --prefix <prefix>', 'The filename prefix for the image and the bundled AMI files.', 'image')
    .option('-s, --size <MB>', `The size of the image file in MB (1024*1024 bytes), at most ${MAX_SIZE_MB} (unless --no-size-checks).`, String(MAX_SIZE_MB))
    .option('--no-size-checks', `Allow --size over ${MAX_SIZE_MB} MB (EC2 registers instance-store images of at most 10 GiB).`)
    .option('--inherit', 'Inherit instance metadata (kernel, ramdisk, product codes, block device mappings, ancestry). Enabled by default.', true)
    .option('--no-inherit', 'Do not read instance metadata (required when not bundling on an EC2 instance).')
    .option('-v, --volume <path>', 'The absolute path to the mounted volume to bundle.', '/')
    .addOption(new Option('-P, --partition <type>', "The partition table of the image: mbr, gpt or none. Default: the volume's parent disk's type ('none' when it has no partitions, 'gpt' when unknown)."))
    .option('-S, --script <path>', 'A script to run on the staged files before the image is made; it gets the staging directory as its argument.')
    .option('--fstab <path>', 'The fstab to put in the image (default: the volume\'s own /etc/fstab).')
    .option('--generate-fstab', 'Put an EC2 fstab in the image instead of the volume\'s own.')
    .option('--grub-config <path>', 'A legacy GRUB menu copied to /boot/grub/menu.lst and /boot/grub/grub.conf in the image.')
    .option('--clone-only', 'Only make the image file; do not bundle it.')),
  '--cert', '--privatekey', '--user');

function requireExecutable(path: string, flag: string): string {
  requireFile(path, flag);
  try { accessSync(path, constants.X_OK); } catch { throw invalidValue(flag, path, 'File is not executable.'); }
  return path;
}

function parseSize(value: string, sizeChecks: boolean): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw invalidValue('--size', value, 'must be a whole number of MB');
  const mb = Number(value);
  if (mb > MAX_SIZE_MB && sizeChecks) throw invalidValue('--size', value, `the specified size ${mb}MB is too large (at most ${MAX_SIZE_MB}; --no-size-checks lifts the limit)`);
  return mb;
}

function absolutePaths(values: string[], flag: string): string[] {
  for (const v of values) if (!v.startsWith('/')) throw invalidValue(flag, v, 'must be an absolute path (relative to the volume)');
  return values;
}

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Flags>(command(), argv, async (o, cmd, signal) => {
    const reporter = new Reporter(o);
    const sizeMB = parseSize(o.size, o.sizeChecks);
    if (sizeMB > MAX_SIZE_MB) reporter.warn(`--size ${sizeMB} MB is over EC2's 10 GiB limit for instance-store images (--no-size-checks).`);
    let scheme: PartitionScheme | undefined;
    if (o.partition !== undefined) {
      if (!PARTITION_SCHEMES.includes(o.partition as PartitionScheme)) throw invalidValue('--partition', o.partition, `must be one of ${PARTITION_SCHEMES.join(', ')}`);
      scheme = o.partition as PartitionScheme;
    }
    if (o.prefix.includes('/')) throw invalidValue('--prefix', o.prefix, "'/' character not allowed");
    if (!isPlainFileName(o.prefix)) throw invalidValue('--prefix', o.prefix, `not a plain file name (${PLAIN_FILE_NAME_RULE})`);
    // Before looking at paths: a non-root user may not even be able to see the volume.
    if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new ToolError(`You need to be root to run ${NAME}`);
    let volume: string;
    try {
      if (!statSync(o.volume).isDirectory()) throw new Error();
      volume = realpathSync(o.volume);
    } catch {
      throw invalidValue('--volume', o.volume, 'Directory does not exist or is not a directory.');
    }
    const excludes = absolutePaths(o.exclude ?? [], '--exclude');
    const includes = absolutePaths(o.include ?? [], '--include');
    if (o.fstab !== undefined && o.generateFstab) throw new UsageError('--fstab and --generate-fstab can not be used together');
    if (o.fstab !== undefined) requireFile(o.fstab, '--fstab');
    if (o.grubConfig !== undefined) requireFile(o.grubConfig, '--grub-config');
    if (o.script !== undefined) requireExecutable(o.script, '--script');
    if (o.cloneOnly && o.bucket !== undefined) throw new UsageError('--bucket and --clone-only can not be used together: there is no bundle to upload');
    const s3 = await checkBundleS3Flags(o, cmd);
    const destination = realpathSync(requireDirectory(o.destination, '--destination'));
    // Pseudo-filesystems of the running system are never bundled and can't hold a bundle.
    for (const d of ['/proc', '/sys', '/dev']) {
      if (isUnder(destination, d)) throw invalidValue('--destination', o.destination, `it is inside ${d}, which is never bundled and can not hold an image; use a directory on a disk (e.g. /mnt)`);
    }

    // The bundle flags are needed only when bundling; check them before hours of copying.
    const flags = o.cloneOnly ? undefined : await resolveBundleFlags(o, reporter);

    let inherited: ReturnType<typeof mergeInherited> | undefined;
    if (flags && o.inherit) {
      const { MetadataClient, mergeInherited, readInstanceMetadata } = await import('../ec2/metadata.js');
      const md = await readInstanceMetadata(new MetadataClient());
      inherited = mergeInherited(
        { kernelId: flags.kernelId, ramdiskId: flags.ramdiskId, productCodes: flags.productCodes, blockDeviceMappings: flags.blockDeviceMappings },
        md,
      );
      if (inherited.inherited.length) reporter.line(`Inherited from instance metadata: ${inherited.inherited.join(', ')}`);
      for (const m of inherited.missing) reporter.line(`Unable to read instance meta-data for ${m}`);
      // resolveBundleFlags checked -B alone; check the merged mappings when they came from the instance.
      if (!flags.blockDeviceMappings && inherited.fields.blockDeviceMappings) {
        for (const w of missingMappingWarnings(inherited.fields.blockDeviceMappings)) reporter.line(w);
      }
    }

    // The bucket is checked (and created) before hours of copying.
    const sink = !flags ? undefined : s3 ? await openS3Sink(reporter, s3, { destination, name: o.prefix, signal }) : directorySink(reporter, destination, signal);
    try {
      const f = inherited?.fields;
      const { image: result, bundle } = await bundleVolume({
        volume,
        destination,
        prefix: o.prefix,
        sizeMB,
        scheme,
        excludes,
        includes,
        filter: o.filter,
        all: Boolean(o.all),
        fstab: o.fstab,
        generateFstab: o.generateFstab,
        grubConfig: o.grubConfig,
        script: o.script,
        line: (s) => reporter.line(s),
        warn: (s) => reporter.warn(s),
        debug: o.debug ? (s) => reporter.warn(`DEBUG: ${s}`) : undefined,
        signal,
        bundle: flags && sink && {
          ...flags,
          ...sink.bundleOptions,
          kernelId: f ? f.kernelId : flags.kernelId,
          ramdiskId: f ? f.ramdiskId : flags.ramdiskId,
          productCodes: f ? f.productCodes : flags.productCodes,
          blockDeviceMappings: f ? f.blockDeviceMappings : flags.blockDeviceMappings,
          ancestry: f?.ancestry,
          onEvent: sink.onEvent,
        },
        onImage: (image) => {
          reporter.line(`Image file created: ${image.imagePath}`);
          reporter.line('Volume cloning done.');
          reporter.line(flags ? 'Bundling image file...' : 'Not bundling image file since "--clone-only" flag was specified.');
        },
      }).finally(() => reporter.stop());
      const doc = bundle && sink ? { ...(await reportBundle(reporter, destination, bundle)), ...(await sink.finish(bundle, result.imagePath)) } : {};
      reporter.line(`${NAME} complete.`);
      return { image: result.imagePath, imageSize: sizeMB * 1024 * 1024, volume, partitionTable: result.layout.scheme, ...doc };
    } finally {
      sink?.close();
    }
  });
}
