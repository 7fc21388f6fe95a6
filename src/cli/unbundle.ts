import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { unbundle, S3_PREFETCH } from '../bundle/unbundle.js';
import { DirectoryStore } from '../store/directory-store.js';
import type { PartStore } from '../store/part-store.js';
import { openImageSink } from '../stream/image-sink.js';
import { displayText } from '../format/display.js';
import { checkBundleSource, given, type BundleSourceFlags } from './bundle-source.js';
import { createCommand, invalidValue, markMandatory, requireFile, requireWritableDirectory, runCommand, writableParent, type CommonOptions } from './command.js';
import { Reporter, formatBytes } from './reporter.js';
import { bundleDocument } from './result.js';
import { addS3Options, targetFromFlags, type S3Flags } from './s3-options.js';

interface Flags extends CommonOptions, Partial<S3Flags>, BundleSourceFlags {
  destination: string;
  outputImage?: string;
  deviceZeroed?: boolean;
}

/** The attribute names of the S3 flags (all but -b), which only mean something with -b. */
let s3Flags: string[] = [];

const command = () => {
  const cmd = createCommand('ec2-unbundle', 'Recreate an image from its bundle: verify, decrypt and unpack the parts named by a manifest, from a directory or straight from S3.')
    .option('-k, --privatekey <path>', 'The path to the PEM encoded RSA private key the bundle was made for.')
    .option('-m, --manifest <path>', 'The path to the manifest file; with -b, the manifest object\'s name under the key prefix (default: PREFIX.manifest.xml).')
    .option('-s, --source <directory>', 'The directory containing the bundled AMI parts.', '.')
    .option('-d, --destination <directory>', 'The directory to write the image to.', '.')
    .option('--cert <path>', "Verify the manifest's signature with this PEM certificate before unbundling.")
    .option('-o, --output-image <path>', 'Write the image itself to PATH instead of into -d: a file (holes restored), an existing block device (written in place; it must not be mounted and must hold the image), or - for stdout.')
    .option('--device-zeroed', 'With -o DEVICE: the device already reads as zeros (e.g. a new EBS volume), so the image\'s zero runs are not written.')
    .option('-p, --prefix <PREFIX>', 'With -b: the bundle file name prefix; the manifest is PREFIX.manifest.xml (default: image).');
  const before = new Set(cmd.options.map((o) => o.attributeName()));
  addS3Options(cmd, { withoutShort: ['-s'] });
  s3Flags = cmd.options.map((o) => o.attributeName()).filter((n) => !before.has(n) && n !== 'bucket');
  return markMandatory(cmd, '--privatekey', '--manifest');
};


/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Flags>(command(), argv, async (o, cmd, signal) => {
    const privateKeyPath = requireFile(o.privatekey, '--privatekey');
    const fromS3 = o.bucket !== undefined;
    checkBundleSource(o, cmd, s3Flags);
    const output = o.outputImage;
    if (output !== undefined) {
      if (given(cmd, 'destination')) throw new UsageError('-o/--output-image and -d/--destination both say where the image goes: give one of them');
      if (output === '-' && o.output === 'json') throw new UsageError('-o - writes the image to stdout, where --output json would write too: give one of them');
      checkOutputPath(output, o.deviceZeroed);
    } else {
      if (o.deviceZeroed) throw new UsageError('--device-zeroed applies to -o DEVICE only');
      requireWritableDirectory(o.destination, '--destination');
    }
    if (o.cert !== undefined) requireFile(o.cert, '--cert');

    // With the image on stdout, every line goes to stderr.
    const toStdout = output === '-';
    const reporter = new Reporter({ ...o, ...(toStdout ? { stream: process.stderr, lines: process.stderr } : {}) });
    const manifestName = o.manifest ?? `${o.prefix ?? 'image'}.manifest.xml`;
    const target = fromS3 ? await targetFromFlags({ ...o, bucket: o.bucket! }, reporter) : undefined;
    try {
      let store: PartStore;
      if (target) {
        const { S3Store } = await import('../store/s3-store.js');
        store = new S3Store(target, { signal });
      } else {
        store = new DirectoryStore(o.source, { signal });
      }
      const result = await unbundle({
        manifest: target ? { name: manifestName } : { path: o.manifest! },
        store,
        privateKeyPath,
        ...(output === undefined
          ? { destination: o.destination }
          : { sink: (imageSize: number) => openImageSink(output, { imageSize, deviceZeroed: o.deviceZeroed, signal }) }),
        certPath: o.cert,
        // --concurrency N: N parts in memory at most, 10 MiB each; the default (2) keeps the peak under 200 MB.
        prefetch: !target ? 0 : given(cmd, 'concurrency') ? target.concurrency - 1 : S3_PREFETCH,
        onEvent: (e) => { if (e.type === 'progress') reporter.progress('Unbundling', e.bytes, e.totalBytes); },
        signal,
      });
      reporter.stop();
      const image = result.extracted[0];
      if (output !== undefined && image) {
        reporter.line(`Wrote ${displayText(image.name)} (${formatBytes(image.size)}) to ${toStdout ? 'stdout' : output}.`);
      }
      reporter.line('Unbundle complete.');
      return {
        manifest: target ? `${store.location}${manifestName}` : o.manifest!,
        files: result.files,
        ...(await bundleDocument(result.manifest, target ? undefined : o.source)),
      };
    } finally {
      reporter.stop();
      target?.client.destroy();
    }
  });
}

/** The output is checked before anything is fetched: a file in an existing directory, a device, or a stream. */
function checkOutputPath(path: string, deviceZeroed?: boolean): void {
  if (path === '-') {
    if (deviceZeroed) throw new UsageError('--device-zeroed applies to -o DEVICE only, not to stdout');
    return;
  }
  let st;
  try { st = statSync(path); } catch { /* a new file: its directory must exist */ }
  if (st?.isDirectory()) throw invalidValue('--output-image', path, 'it is a directory: give a file, a block device or - (stdout), or use -d DIRECTORY');
  if (deviceZeroed && !st?.isBlockDevice()) throw new UsageError(`--device-zeroed applies to -o DEVICE only, and ${path} is not a block device`);
  if (!st && !writableParent(path)) throw invalidValue('--output-image', path, `its directory ${dirname(resolve(path))} does not exist or is not writable`);
}
