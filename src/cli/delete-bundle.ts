import { ToolError, UsageError, errorMessage } from '../errors.js';
import { isAwsEndpoint } from '../aws/endpoints.js';
import { createCommand, invalidValue, markMandatory, requireFile, requireOption, runCommand, type CommonOptions } from './command.js';
import { canPrompt, confirm } from './prompt.js';
import { Reporter } from './reporter.js';
import { addS3Options, targetFromFlags, type S3Flags } from './s3-options.js';
import { displayText } from '../format/display.js';
import { PLAIN_FILE_NAME_RULE, isPlainFileName } from '../format/part-name.js';
import type { RegisteredImagesCheck } from '../bundle/delete-bundle.js';

interface Options extends CommonOptions, Partial<S3Flags> {
  profile?: string; manifest?: string; prefix?: string; clear?: boolean; yes?: boolean; deregister?: boolean; force?: boolean; ec2Check: boolean;
}

const command = () => markMandatory(
  addS3Options(createCommand('ec2-delete-bundle', 'Delete a bundled AMI from S3: its manifest and parts.'))
    .option('-m, --manifest <PATH>', 'A local copy of the manifest: delete it and its parts from the bucket.')
    .option('-p, --prefix <PREFIX>', 'Delete PREFIX.part.N and PREFIX.manifest.xml (listed from the bucket).')
    .option('--clear', 'Then delete the bucket if it is empty.')
    .option('-y, --yes', 'Delete without asking.')
    .option('--deregister', 'Deregister the AMIs registered from this bundle first (they are looked up in EC2).')
    .option('--force', 'Delete the bundle even though AMIs are registered from it (they will no longer launch).')
    .option('--no-ec2-check', 'Do not look up AMIs registered from this bundle (delete as the original does).'),
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
    if (opts.deregister && opts.force) throw new UsageError('--deregister and --force cannot be used together');
    if (!opts.ec2Check && (opts.deregister || opts.force)) throw new UsageError(`--${opts.deregister ? 'deregister' : 'force'} needs the EC2 check: drop --no-ec2-check`);
    const reporter = new Reporter(opts);
    const target = await targetFromFlags({ ...opts, bucket }, reporter);
    const [{ loadProfile }, { ec2ClientFactory, endpointFor }, { BundleRegisteredError, deleteBundle }, { S3Store }] = await Promise.all([
      import('../aws/config.js'), import('../ec2/client.js'), import('../bundle/delete-bundle.js'), import('../store/s3-store.js')]);
    let images: RegisteredImagesCheck | undefined;
    if (opts.ec2Check) {
      if (target.endpoint && !isAwsEndpoint(target.endpoint) && !endpointFor(target.region)) {
        reporter.warn(`Not checking for AMIs registered from this bundle: ${target.endpoint} is an S3-compatible store, not AWS, and no EC2 endpoint is set (AWS_ENDPOINT_URL_EC2).`);
      } else {
        // A short leash: the check must not hold up a deletion that works without it.
        const clients = ec2ClientFactory({ accessKey: opts.accessKey, secretKey: opts.secretKey, delegationToken: opts.delegationToken, profile: await loadProfile(opts.profile), attempts: 2, connectionTimeoutMs: 3000, requestTimeoutMs: 5000 });
        images = { clients, region: target.region, action: opts.deregister ? 'deregister' : opts.force ? 'force' : 'refuse', timeoutMs: 8000 };
      }
    }
    try {
      const result = await deleteBundle({
        store: new S3Store(target, { signal }), manifestPath: opts.manifest, prefix: opts.prefix, clear: opts.clear, images,
        confirm: async (names, deregister) => {
          if (deregister.length) {
            reporter.line('Deregistering AMIs:');
            for (const id of deregister) reporter.line(`   - ${id}`);
          }
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
          else if (e.type === 'step' && e.step === 'deregistered-image') reporter.line(`Deregistered ${displayText(e.name ?? '')}`);
          else if (e.type === 'step') reporter.line(`Attempting to delete bucket ${displayText(e.name ?? '')}...`);
          else if (e.type === 'warning') reporter.warn(e.message);
        },
        signal,
      });
      reporter.line('ec2-delete-bundle complete.');
      return { bucket: target.bucket, keyPrefix: target.keyPrefix, region: target.region, deleted: result.deleted, bucketDeleted: result.bucketDeleted };
    } catch (err) {
      if (err instanceof BundleRegisteredError) {
        throw new ToolError(`refusing to delete: ${errorMessage(err)} (--deregister does that), or pass --force to delete anyway`, { code: err.code });
      }
      throw err;
    } finally {
      reporter.stop();
      target.client.destroy();
    }
  });
}
