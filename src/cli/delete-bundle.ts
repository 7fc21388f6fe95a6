import { ToolError, UsageError } from '../errors.js';
import { createCommand, invalidValue, markMandatory, requireFile, requireOption, runCommand, type CommonOptions } from './command.js';
import { canPrompt, confirm } from './prompt.js';
import { Reporter } from './reporter.js';
import { addS3Options, targetFromFlags } from '../s3/cli-options.js';
import type { S3Flags } from '../s3/client.js';
import { deleteBundle } from '../s3/delete.js';

interface Options extends CommonOptions, Partial<S3Flags> { profile?: string; manifest?: string; prefix?: string; clear?: boolean; yes?: boolean }

const command = () => markMandatory(
  addS3Options(createCommand('ec2-delete-bundle', 'Delete a bundled AMI from S3: its manifest and parts.'))
    .option('-m, --manifest <PATH>', 'A local copy of the manifest: delete it and its parts from the bucket.')
    .option('-p, --prefix <PREFIX>', 'Delete PREFIX.part.N and PREFIX.manifest.xml (listed from the bucket).')
    .option('--clear', 'Then delete the bucket if it is empty.')
    .option('-y, --yes', 'Delete without asking.'),
  '--bucket');

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Options>(command(), argv, async (opts) => {
    const bucket = requireOption(opts.bucket, '--bucket');
    if (opts.manifest === undefined && opts.prefix === undefined) throw new UsageError('missing mandatory parameter: --manifest or --prefix');
    if (opts.manifest !== undefined && opts.prefix !== undefined) throw new UsageError('--manifest and --prefix cannot be used together');
    if (opts.manifest !== undefined) {
      requireFile(opts.manifest, '--manifest');
    }
    if (opts.prefix !== undefined && (opts.prefix === '' || opts.prefix.includes('/'))) {
      throw invalidValue('--prefix', opts.prefix, "a bundle file name prefix without '/' is required (put key prefixes in -b BUCKET/key/prefix)");
    }
    const reporter = new Reporter(opts);
    const target = await targetFromFlags({ ...opts, bucket }, reporter);
    try {
      const result = await deleteBundle({
        target, manifestPath: opts.manifest, prefix: opts.prefix, clear: opts.clear,
        confirm: async (names) => {
          if (opts.yes) return true;
          if (!canPrompt(opts.batch)) {
            throw new ToolError(`refusing to delete ${names.length} object(s) without confirmation: there is no terminal to ask on${opts.batch ? ' (--batch)' : ''}; pass -y/--yes`);
          }
          return confirm('Continue [y/N]: ');
        },
        line: (t) => reporter.line(t),
        warn: (t) => reporter.warn(t),
      });
      return { bucket: target.bucket, keyPrefix: target.keyPrefix, region: target.region, deleted: result.deleted, bucketDeleted: result.bucketDeleted };
    } finally {
      reporter.stop();
      target.client.destroy();
    }
  });
}
