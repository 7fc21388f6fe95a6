// --bucket on the bundling commands: the parts go straight to S3 as they are made, the manifest last (and a copy of
// it to -d), then --register or the register-image hint. The AWS SDK is imported only once --bucket is given.
import type { Command, Option } from 'commander';
import { UsageError } from '../errors.js';
import type { AbortReport } from '../store/part-store.js';
import { partLength } from '../format/part-name.js';
import type { VirtualizationType } from '../format/disk-detect.js';
import { bundleEvents, type BundleSink } from './bundle-options.js';
import { requireOption } from './command.js';
import { addRegisterOptions, checkRegisterFlags, registerOrHint, type RegisterFlags } from './register-options.js';
import type { Reporter } from './reporter.js';
import { addS3Options, parseAcl, s3TargetOptions, targetFromFlags, type S3Flags } from './s3-options.js';
import type { Acl } from '../s3/defaults.js';

/** Parts on their way to S3 at once unless --concurrency says otherwise: each holds 10 MiB of memory. */
export const BUNDLE_PARTS_IN_FLIGHT = 2;

/** The flags addBundleS3Options adds, as commander parses them. */
export interface BundleS3Flags extends Partial<S3Flags>, RegisterFlags {
  profile?: string;
  acl?: string;
  keepPartial?: boolean;
}

/** The options each command got from addBundleS3Options: without --bucket none of them may be given. */
const added = new WeakMap<Command, Option[]>();

/** --bucket and the S3 flags in their long forms only (the bundling commands' -a -s -b keep their meaning), --acl, --keep-partial, --register…, grouped in --help. */
export function addBundleS3Options(cmd: Command): Command {
  const before = cmd.options.length;
  cmd.optionsGroup('Bundle straight to S3 (with --bucket):');
  addRegisterOptions(addS3Options(cmd, { longOnly: true }))
    .option('--acl <ACL>', 'Canned ACL for the objects: aws-exec-read (default), public-read, bucket-owner-full-control, private.')
    .option('--keep-partial', 'If bundling fails, leave the parts already uploaded in the bucket (default: they are deleted).');
  cmd.optionsGroup('Optional parameters:');
  const options = (cmd.options as Option[]).slice(before);
  options.find((o) => o.long === '--concurrency')!.description =
    `Parts uploaded in parallel while bundling (default: ${BUNDLE_PARTS_IN_FLIGHT}; each holds 10 MiB of memory).`;
  added.set(cmd, options);
  return cmd;
}

/** What the S3 flags say, checked before any work. */
export interface BundleS3Plan { flags: BundleS3Flags & { bucket: string }; acl: Acl; forced?: VirtualizationType }

/**
 * Checks the S3 flags before anything is read or copied: undefined without --bucket (and then none of them may be
 * given); with it, the values (--acl, --register's name, --sigv, --url, --timeout, --concurrency) are checked now.
 */
export async function checkBundleS3Flags(o: BundleS3Flags, cmd: Command): Promise<BundleS3Plan | undefined> {
  if (o.bucket === undefined) {
    const stray = (added.get(cmd) ?? []).filter((opt) => cmd.getOptionValueSource(opt.attributeName()) === 'cli').map((opt) => opt.long);
    if (stray.length) throw new UsageError(`${stray.join(', ')} ${stray.length > 1 ? 'are' : 'is'} for bundling straight to S3: add --bucket BUCKET[/PREFIX]`);
    return undefined;
  }
  const flags = { ...o, bucket: requireOption(o.bucket, '--bucket') };
  const acl = parseAcl(o.acl);
  const forced = await checkRegisterFlags(o);
  s3TargetOptions(flags);
  return { flags, acl, forced };
}

const parts = (n: number) => `${n} part${n === 1 ? '' : 's'}`;

/** The line for the parts a failed bundling left in the bucket, or removed from it; undefined when it had stored none. */
export function partialLine(r: Pick<AbortReport, 'parts' | 'location' | 'kept' | 'failed'>, name: string): string | undefined {
  if (r.kept) return r.parts ? `Kept the ${parts(r.parts)} already uploaded, ${r.location}${name}.part.* (--keep-partial); no manifest was uploaded.` : undefined;
  if (r.failed) return `Could not remove ${r.failed} of the objects uploaded to ${r.location}${name}.part.*: delete them yourself; no manifest was uploaded.`;
  return r.parts ? `Removed the ${parts(r.parts)} already uploaded to ${r.location}; no manifest was uploaded.` : undefined;
}

/**
 * Opens the bucket (created in --region if missing, refused if it lives elsewhere, as ec2-upload-bundle does) and
 * gives the sink the bundling writes to: parts to S3 as they are made, the manifest last, a copy of it in -d.
 */
export async function openS3Sink(reporter: Reporter, plan: BundleS3Plan, o: { destination: string; name: string; signal: AbortSignal }): Promise<BundleSink> {
  const [{ S3Store }, { ensureBucket }, { detectImageFileVirtualization }] = await Promise.all([
    import('../store/s3-store.js'), import('../bundle/upload-bundle.js'), import('../bundle/virtualization.js')]);
  const target = await targetFromFlags(plan.flags, reporter);
  const store = new S3Store(target, { acl: plan.acl, signal: o.signal });
  try {
    await ensureBucket(store, undefined, (e) => {
      if (e.type === 'step' && e.step === 'creating-bucket') reporter.line('Creating bucket...');
      else if (e.type === 'warning') reporter.warn(e.message);
    });
  } catch (err) {
    target.client.destroy();
    throw err;
  }
  const lines = bundleEvents(reporter, 'Uploaded');
  return {
    bundleOptions: {
      store,
      partsInFlight: plan.flags.concurrency === undefined ? BUNDLE_PARTS_IN_FLIGHT : target.concurrency,
      keepPartial: plan.flags.keepPartial,
      manifestCopyDir: o.destination,
    },
    onEvent: (e) => {
      if (e.type !== 'partial') return lines(e);
      const line = partialLine({ ...e, kept: e.action === 'kept' }, o.name);
      if (line) reporter.warn(line);
    },
    async finish(result, image) {
      const manifestKey = store.key(result.manifestName);
      reporter.line(`Manifest uploaded to: ${target.bucket}/${manifestKey}`);
      reporter.line('Bundle upload completed.');
      const imageId = await registerOrHint(reporter, {
        flags: plan.flags, bucket: target.bucket, manifestKey, manifest: result.manifest, region: target.region,
        virtualization: plan.forced ?? await detectImageFileVirtualization(image),
      });
      const m = result.manifest;
      return {
        ...(imageId ? { imageId } : {}),
        bucket: target.bucket, keyPrefix: target.keyPrefix, region: target.region,
        location: `s3://${target.bucket}/${manifestKey}`, imageLocation: `${target.bucket}/${manifestKey}`,
        parts: m.parts.map((p, i) => ({ name: p.filename, size: partLength(m.bundledSize, i), sha1: p.digest })),
      };
    },
    close: () => target.client.destroy(),
  };
}
