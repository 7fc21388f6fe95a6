import { dirname } from 'node:path';
import { createCommand, invalidValue, markMandatory, requireOption, runCommand, type CommonOptions } from './command.js';
import { Reporter } from './reporter.js';
import { bundleDocument } from './result.js';
import { readManifest } from '../bundle/manifest-file.js';
import { addS3Options, targetFromFlags } from '../s3/cli-options.js';
import type { S3Flags } from '../s3/client.js';
import { ACLS, uploadBundle, type Acl } from '../s3/upload.js';

interface Options extends CommonOptions, Partial<S3Flags> {
  profile?: string; manifest?: string; acl?: string; directory?: string; part?: string; skipmanifest?: boolean; location?: string;
}

const LOCATIONS = ['EU', 'US', 'us-gov-west-1', 'us-west-1', 'us-west-2', 'ap-southeast-1', 'ap-southeast-2', 'ap-northeast-1', 'sa-east-1', 'eu-west-1', 'eu-central-1', 'cn-north-1'];

const command = () => markMandatory(
  addS3Options(createCommand('ec2-upload-bundle', 'Upload a bundled AMI to S3: the parts, then the manifest.'))
    .option('-m, --manifest <PATH>', 'The path to the manifest file.')
    .option('--acl <ACL>', 'Canned ACL for the objects: aws-exec-read (default), public-read, bucket-owner-full-control, private.')
    .option('-d, --directory <DIRECTORY>', "The directory holding the parts (default: the manifest's directory).")
    .option('--part <N>', 'Upload part N and every later part only.')
    .option('--skipmanifest', 'Do not upload the manifest.')
    .option('--location <LOCATION>', 'Deprecated: the location of the bucket (EU, US or a region); use --region.'),
  '--bucket', '--manifest');

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Options>(command(), argv, async (opts) => {
    const manifestPath = requireOption(opts.manifest, '--manifest');
    const bucket = requireOption(opts.bucket, '--bucket');
    const acl = opts.acl ?? 'aws-exec-read';
    if (!(ACLS as readonly string[]).includes(acl)) throw invalidValue('--acl', acl, `Please specify one of these values: ${ACLS.join(', ')}`);
    let startPart: number | undefined;
    if (opts.part !== undefined) {
      if (!/^\d+$/.test(opts.part)) throw invalidValue('--part', opts.part, 'a part index (0, 1, ...) is required');
      startPart = Number(opts.part);
    }
    if (opts.location !== undefined && !LOCATIONS.includes(opts.location) && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(opts.location)) {
      throw invalidValue('--location', opts.location, `Please specify one of these values: ${LOCATIONS.join(', ')}`);
    }
    const reporter = new Reporter(opts);
    const target = await targetFromFlags({ ...opts, bucket }, reporter);
    try {
      const result = await uploadBundle({
        target, manifestPath, directory: opts.directory, acl: acl as Acl, startPart, skipManifest: opts.skipmanifest,
        location: opts.location,
        line: (t) => reporter.line(t),
        warn: (t) => reporter.warn(t),
        progress: (done, total, parts, of) => reporter.progress('Uploading', done, total, `${parts}/${of} parts`),
      });
      reporter.stop();
      const regionArg = target.regionGiven || target.region !== 'us-east-1' ? ` --region ${target.region}` : '';
      if (result.manifestKey) {
        reporter.line(`Register it with: aws ec2 register-image --image-location ${target.bucket}/${result.manifestKey} --name NAME${regionArg}`);
      }
      return {
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
