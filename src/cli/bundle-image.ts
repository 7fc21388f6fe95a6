import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { createCommand, invalidValue, markMandatory, requireOption, runCommand, type CommonOptions } from './command.js';
import { addBundleFlags, bundleAndReport, directorySink, resolveBundleFlags, type BundleFlags } from './bundle-options.js';
import { addBundleS3Options, checkBundleS3Flags, openS3Sink, type BundleS3Flags } from './bundle-s3.js';
import { bundleName } from '../bundle/bundle-image.js';
import { ToolError } from '../errors.js';
import { PLAIN_FILE_NAME_RULE, isPlainFileName } from '../format/part-name.js';
import { Reporter } from './reporter.js';

const MAX_IMAGE_SIZE = 10 * 1024 ** 3;

interface Flags extends BundleFlags, BundleS3Flags, CommonOptions {
  image?: string;
  prefix?: string;
  sizeChecks: boolean;
}

const command = () => markMandatory(addBundleS3Options(
  addBundleFlags(createCommand('ec2-bundle-image', 'Bundle an image file into an S3-backed AMI bundle: encrypted 10 MiB parts and a signed manifest.'))
    .option('-i, --image <path>', 'The path to the file system image to bundle.')
    .option('-p, --prefix <prefix>', 'The filename prefix for bundled AMI files. Defaults to the image name.')
    .option('--no-size-checks', "Don't check the image size (zero or over 10 GiB).")),
  '--cert', '--privatekey', '--user', '--image');

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Flags>(command(), argv, async (o, cmd, signal) => {
    const image = requireOption(o.image, '--image');
    let size: number;
    try {
      const st = statSync(image);
      if (!st.isFile()) throw new Error('not a file');
      size = st.size;
    } catch {
      throw invalidValue('--image', image, 'File does not exist or is not a file.');
    }
    if (o.prefix !== undefined && o.prefix.includes('/')) throw invalidValue('--prefix', o.prefix, "'/' character not allowed");
    // Parts and the manifest are named after the bundle: the name must pass the rule every other command reads by.
    if (o.prefix !== undefined && !isPlainFileName(o.prefix)) throw invalidValue('--prefix', o.prefix, `not a plain file name (${PLAIN_FILE_NAME_RULE})`);
    if (o.prefix === undefined && !isPlainFileName(basename(image))) {
      throw invalidValue('--image', image, `its file name is not a plain file name (${PLAIN_FILE_NAME_RULE}); name the bundle with -p/--prefix`);
    }

    const s3 = await checkBundleS3Flags(o, cmd);

    const reporter = new Reporter(o);
    const flags = await resolveBundleFlags(o, reporter);
    if (o.sizeChecks) {
      if (size === 0) throw new ToolError(`the specified image ${basename(image)} is zero sized`);
      if (size > MAX_IMAGE_SIZE) throw new ToolError(`the specified image ${basename(image)} is too large`);
    }

    const sink = s3 ? await openS3Sink(reporter, s3, { destination: flags.destination, name: bundleName(image, o.prefix), signal })
      : directorySink(reporter, flags.destination, signal);
    try {
      const doc = await bundleAndReport(reporter, sink, { ...flags, image, prefix: o.prefix, signal });
      reporter.line('ec2-bundle-image complete.');
      return { image, ...doc };
    } finally {
      sink.close();
    }
  });
}
