import { dirname } from 'node:path';
import { UsageError } from '../errors.js';
import { createCommand, invalidValue, markMandatory, requireFile, requireOption, runCommand, type CommonOptions } from './command.js';
import { addRegisterOptions, checkRegisterFlags, registerOrHint, type RegisterFlags } from './register-options.js';
import { Reporter } from './reporter.js';
import { addS3Options, parseAcl, targetFromFlags, type S3Flags } from './s3-options.js';
import { displayText } from '../format/display.js';
import { bundleDocument } from './result.js';
import { readManifest } from '../bundle/manifest-file.js';
import { loadManifest } from '../bundle/manifest-file.js';
import type { Detection, VirtualizationType } from '../format/disk-detect.js';
import type { OperationStep } from '../events.js';
import { DirectoryStore } from '../store/directory-store.js';

interface Options extends CommonOptions, Partial<S3Flags>, RegisterFlags {
  profile?: string; manifest?: string; acl?: string; directory?: string; part?: string; skipmanifest?: boolean; location?: string; privatekey?: string;
}

const LOCATIONS = ['EU', 'US', 'us-gov-west-1', 'us-west-1', 'us-west-2', 'ap-southeast-1', 'ap-southeast-2', 'ap-northeast-1', 'sa-east-1', 'eu-west-1', 'eu-central-1', 'cn-north-1'];

const command = () => markMandatory(
  addRegisterOptions(addS3Options(createCommand('ec2-upload-bundle', 'Upload a bundled AMI to S3: the parts, then the manifest.')))
    .option('-m, --manifest <PATH>', 'The path to the manifest file.')
    .option('--acl <ACL>', 'Canned ACL for the objects: aws-exec-read (default), public-read, bucket-owner-full-control, private.')
    .option('-d, --directory <DIRECTORY>', "The directory holding the parts (default: the manifest's directory).")
    .option('--part <N>', 'Upload part N and every later part only.')
    .option('--skipmanifest', 'Do not upload the manifest.')
    .option('--location <LOCATION>', 'Deprecated: the location of the bucket (EU, US or a region); use --region.')
    .option('-k, --privatekey <PATH>', "The bundle's private key: the virtualization type is then detected from the image's first sectors."),
  '--bucket', '--manifest');

/** The original's line for each step of an upload. */
function uploadStepLine(step: OperationStep, name = ''): string {
  switch (step) {
    case 'creating-bucket': return 'Creating bucket...';
    case 'uploading-parts': return `Uploading bundled image parts to the S3 bucket ${name} ...`;
    case 'skipping-manifest': return 'Skipping manifest.\nBundle upload completed.';
    case 'uploading-manifest': return 'Uploading manifest ...';
    case 'manifest-uploaded': return `Uploaded manifest.\nManifest uploaded to: ${name}\nBundle upload completed.`;
    default: return step;
  }
}

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Options>(command(), argv, async (opts, _cmd, signal) => {
    const manifestPath = requireOption(opts.manifest, '--manifest');
    const bucket = requireOption(opts.bucket, '--bucket');
    const acl = parseAcl(opts.acl);
    let startPart: number | undefined;
    if (opts.part !== undefined) {
      if (!/^\d+$/.test(opts.part)) throw invalidValue('--part', opts.part, 'a part index (0, 1, ...) is required');
      startPart = Number(opts.part);
    }
    if (opts.location !== undefined && !LOCATIONS.includes(opts.location) && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(opts.location)) {
      throw invalidValue('--location', opts.location, `Please specify one of these values: ${LOCATIONS.join(', ')}`);
    }
    const forced = await checkRegisterFlags(opts);
    // The AWS SDK is loaded only now, so that --help and bad flags answer at once.
    const [{ uploadBundle }, { detectBundleVirtualization }, { S3Store }] = await Promise.all([
      import('../bundle/upload-bundle.js'), import('../bundle/virtualization.js'), import('../store/s3-store.js')]);
    if (opts.register !== undefined && opts.skipmanifest) throw new UsageError('--register needs the manifest in the bucket: drop --skipmanifest');
    if (opts.privatekey !== undefined) requireFile(opts.privatekey, '--privatekey');
    const reporter = new Reporter(opts);
    const target = await targetFromFlags({ ...opts, bucket }, reporter);
    const source = new DirectoryStore(opts.directory ?? dirname(manifestPath), { signal });
    try {
      // Before anything is uploaded, so a wrong key stops the command early; only the first part's start is decrypted.
      let virtualization: VirtualizationType | Detection | undefined = forced;
      if (!forced && opts.privatekey !== undefined && !opts.skipmanifest) {
        const { manifest } = await loadManifest({ path: manifestPath }, source);
        virtualization = await detectBundleVirtualization({ manifest, source, privateKeyPath: opts.privatekey });
      }
      const result = await uploadBundle({
        store: new S3Store(target, { acl, signal }), manifestPath, source,
        startPart, skipManifest: opts.skipmanifest, location: opts.location,
        onEvent: (e) => {
          if (e.type === 'progress') reporter.progress('Uploading', e.bytes, e.totalBytes, `${e.parts}/${e.totalParts} parts`);
          else if (e.type === 'part') reporter.line(`${e.action === 'skipped' ? 'Skipping' : 'Uploaded'} ${displayText(e.name)}`);
          else if (e.type === 'warning') reporter.warn(e.message);
          else if (e.type === 'step') reporter.line(uploadStepLine(e.step, e.name && displayText(e.name)));
        },
        signal,
      }).catch((err) => {
        // The only option the library refuses on its own is the start part, which needs the manifest to check.
        if (err instanceof UsageError && opts.part !== undefined) throw invalidValue('--part', opts.part, err.message);
        throw err;
      });
      reporter.stop();
      const imageId = result.manifestKey === undefined ? undefined : await registerOrHint(reporter, {
        flags: opts, bucket: target.bucket, manifestKey: result.manifestKey, manifest: result.manifest, region: target.region,
        virtualization, detectHint: opts.privatekey === undefined ? '-k PRIVATEKEY' : undefined,
      });
      return {
        ...(imageId ? { imageId } : {}),
        bucket: target.bucket, keyPrefix: target.keyPrefix, region: target.region,
        ...(result.manifestKey ? { location: `s3://${target.bucket}/${result.manifestKey}`, imageLocation: `${target.bucket}/${result.manifestKey}` } : {}),
        uploaded: result.uploaded, skipped: result.skipped,
        ...(await bundleDocument(await readManifest(manifestPath), opts.directory ?? dirname(manifestPath))),
      };
    } finally {
      reporter.stop();
      target.client.destroy();
    }
  });
}
