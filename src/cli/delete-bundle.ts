import { ToolError, UsageError } from '../errors.js';
import { createCommand, invalidValue, requireFile, requireOption, runCommand, type CommonOptions } from './command.js';
import { canPrompt, confirm } from './prompt.js';
import { Reporter } from './reporter.js';
import { displayText } from '../format/display.js';
import { PLAIN_FILE_NAME_RULE, isPlainFileName } from '../format/part-name.js';
import { addS3Options, targetFromFlags } from '../s3/cli-options.js';
import type { S3Flags } from '../s3/client.js';
import { deleteBundle } from '../s3/delete.js';

interface Options extends CommonOptions, Partial<S3Flags> { manifest?: string; prefix?: string; clear?: boolean; yes?: boolean }

const command = () =>
  addS3Options(createCommand('ec2-delete-bundle', 'Delete a bundled AMI from S3: its manifest and parts.'))
    .option('-m, --manifest <PATH>', 'A local copy of the manifest: delete it and its parts from the bucket.')
    .option('-p, --prefix <PREFIX>', 'Delete PREFIX.part.N and PREFIX.manifest.xml (listed from the bucket).')
    .option('--clear', 'Then delete the bucket if it is empty.')
    .option('-y, --yes', 'Delete without asking.');

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Options>(command(), argv, async (opts) => {
    const bucket = requireOption(opts.bucket, '--bucket');
    if (opts.manifest === undefined && opts.prefix === undefined) throw new UsageError('missing mandatory parameter: --manifest or --prefix');
    if (opts.manifest !== undefined && opts.prefix !== undefined) throw new UsageError('--manifest and --prefix cannot be used together');
    if (opts.manifest !== undefined) {
      requireFile(opts.manifest, '--manifest');
    }
    if (opts.prefix !== undefined && !isPlainFileName(opts.prefix)) {
      throw invalidValue('--prefix', opts.prefix, `a plain bundle name is required (${PLAIN_FILE_NAME_RULE}); put key prefixes in -b BUCKET/key/prefix`);
    }
    const reporter = new Reporter({ batch: opts.batch });
    const target = targetFromFlags({ ...opts, bucket } as S3Flags & { debug?: boolean }, reporter);
    try {
      await deleteBundle({
        target, manifestPath: opts.manifest, prefix: opts.prefix, clear: opts.clear,
        confirm: async (names) => {
          if (opts.yes) return true;
          if (!canPrompt(opts.batch)) {
            throw new ToolError(`refusing to delete ${names.length} object(s) without confirmation: there is no terminal to ask on${opts.batch ? ' (--batch)' : ''}; pass -y/--yes`);
          }
          return confirm('Continue [y/N]: ');
        },
        line: (t) => reporter.line(displayText(t)),
        warn: (t) => reporter.warn(displayText(t)),
      });
    } finally {
      reporter.stop();
      target.client.destroy();
    }
  });
}
