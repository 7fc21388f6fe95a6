import { ToolError, UsageError } from '../errors.js';
import { createCommand, invalidValue, markMandatory, requireFile, requireOption, runCommand, type CommonOptions } from './command.js';
import { canPrompt, confirm } from './prompt.js';
import { Reporter } from './reporter.js';
import { addS3Options, targetFromFlags } from './s3-options.js';
import { displayText } from '../format/display.js';
import { PLAIN_FILE_NAME_RULE, isPlainFileName } from '../format/part-name.js';
import type { S3Flags } from '../s3/client.js';
import { deleteBundle } from '../bundle/delete-bundle.js';
import { S3Store } from '../store/s3-store.js';

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
  return runCommand<Options>(command(), argv, async (opts, _cmd, signal) => {
    const bucket = requireOption(opts.bucket, '--bucket');
    if (opts.manifest === undefined && opts.prefix === undefined) throw new UsageError('missing mandatory parameter: --manifest or --prefix');
    if (opts.manifest !== undefined && opts.prefix !== undefined) throw new UsageError('--manifest and --prefix cannot be used together');
    if (opts.manifest !== undefined) {
      requireFile(opts.manifest, '--manifest');
    }
    if (opts.prefix !== undefined && !isPlainFileName(opts.prefix)) {
      throw invalidValue('--prefix', opts.prefix, `a plain bundle name is required (${PLAIN_FILE_NAME_RULE}); put key prefixes in -b BUCKET/key/prefix`);
    }
    const reporter = new Reporter(opts);
    const target = await targetFromFlags({ ...opts, bucket }, reporter);
    try {
      const result = await deleteBundle({
        store: new S3Store(target, { signal }), manifestPath: opts.manifest, prefix: opts.prefix, clear: opts.clear,
        confirm: async (names) => {
          reporter.line('Deleting files:');
          for (const n of names) reporter.line(`   - ${n}`);
          if (opts.yes) return true;
          if (!canPrompt(opts.batch)) {
            throw new ToolError(`refusing to delete ${names.length} object(s) without confirmation: there is no terminal to ask on${opts.batch ? ' (--batch)' : ''}; pass -y/--yes`);
          }
          const yes = await confirm('Continue [y/N]: ');
          if (!yes) reporter.line('Nothing deleted.');
          return yes;
        },
        onEvent: (e) => {
          if (e.type === 'part') reporter.line(`Deleted ${displayText(e.name)}`);
          else if (e.type === 'step' && e.step === 'nothing-to-delete') reporter.line('No files to delete.');
          else if (e.type === 'step') reporter.line(`Attempting to delete bucket ${displayText(e.name ?? "")}...`);
          else if (e.type === 'warning') reporter.warn(e.message);
        },
        signal,
      });
      reporter.line('ec2-delete-bundle complete.');
      return { bucket: target.bucket, keyPrefix: target.keyPrefix, region: target.region, deleted: result.deleted, bucketDeleted: result.bucketDeleted };
    } finally {
      reporter.stop();
      target.client.destroy();
    }
  });
}
