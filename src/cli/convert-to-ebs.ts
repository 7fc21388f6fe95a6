import { statSync } from 'node:fs';
import type { Command } from 'commander';
import type { Ec2ClientFactory } from '../ec2/client.js';
import { UsageError } from '../errors.js';
import { VIRTUALIZATION_TYPES } from '../format/disk-detect.js';
import { displayText } from '../format/display.js';
import { createCommand, invalidValue, markMandatory, requireFile, requireWritableDirectory, runCommand, writableParent, type CommonOptions } from './command.js';
import { Reporter, announceRetry, formatBytes } from './reporter.js';
import { checkBundleSource, flagName, given, type BundleSourceFlags } from './bundle-source.js';
import { addS3Options, checkCredentialFlags, targetFromFlags, type S3Flags } from './s3-options.js';

interface Flags extends CommonOptions, Partial<S3Flags>, BundleSourceFlags {
  snapshot?: boolean;
  device?: string;
  volumeId?: string;
  deviceZeroed?: boolean;
  size?: string;
  encrypted?: boolean;
  kmsKeyId?: string;
  description?: string;
  tag: string[];
  keepFstab?: boolean;
  register?: string;
  volumeType: string;
  rootDeviceName?: string;
  virtualizationType?: string;
  enaSupport?: boolean;
  dryRun?: boolean;
  keepPartial?: boolean;
  stagingDir?: string;
}

const DEFAULT_CONCURRENCY = 32;
const MAX_CONCURRENCY = 256;
/** Volume types an EBS root device can have (st1 and sc1 cannot boot). */
const ROOT_VOLUME_TYPES = ['gp3', 'gp2', 'io1', 'io2', 'standard'];
/** S3 flags that mean nothing without -b (credentials, --region, --profile and --retry also serve EC2 and EBS). */
const S3_ONLY = ['url', 'endpointUrl', 'sigv', 'pathStyle', 'timeout'];

const collect = (value: string, previous: string[]) => [...previous, value];

const command = () => {
  const cmd = createCommand('ec2-convert-to-ebs', 'Convert an S3-backed (instance-store) AMI bundle to an EBS snapshot and an EBS-backed AMI, streaming, without an instance or a mount.')
    .option('-k, --privatekey <PATH>', 'The PEM encoded RSA private key the bundle was made for.')
    .option('-m, --manifest <PATH>', 'The manifest file; with -b, the manifest object\'s name under the key prefix (default: PREFIX.manifest.xml).')
    .option('-s, --source <DIRECTORY>', 'The directory holding the bundle\'s parts (without -b).', '.')
    .option('-p, --prefix <PREFIX>', 'With -b: the bundle file name prefix; the manifest is PREFIX.manifest.xml (default: image).')
    .option('--cert <PATH>', "Verify the manifest's signature with this PEM certificate first.")
    .option('--snapshot', 'Write a new EBS snapshot with the EBS direct APIs (no instance, no volume).')
    .option('--device <PATH>', 'Write the image onto this attached volume (a block device; a regular file is accepted too).')
    .option('--volume-id <VOLUME>', 'With --device: the volume\'s id (vol-...); snapshot it afterwards (CreateSnapshot).')
    .option('--device-zeroed', 'With --device: the device reads as zeros (a new EBS volume), so the image\'s zero runs are not written.')
    .option('--size <GiB>', 'With --snapshot: the snapshot\'s size in GiB, if larger than the image (default: the image\'s size rounded up).')
    .option('--encrypted', 'With --snapshot: encrypt the snapshot (with the account\'s default EBS key unless --kms-key-id).')
    .option('--kms-key-id <ARN>', 'With --encrypted: the KMS key to encrypt the snapshot with.')
    .option('--description <TEXT>', 'The description of the snapshot and of the AMI.')
    .option('--tag <KEY=VALUE>', 'A tag for the snapshot (repeat for more).', collect, [])
    .option('--keep-fstab', 'Leave /etc/fstab as it is (by default its instance-store entries are removed).')
    .option('--register <NAME>', 'Then register an EBS-backed AMI of this name with the snapshot as its root device; print IMAGE ami-...')
    .option('--volume-type <TYPE>', `With --register: the root volume's type: ${ROOT_VOLUME_TYPES.join(', ')}.`, 'gp3')
    .option('--root-device-name <DEVICE>', 'With --register: the root device (default: /dev/xvda for hvm, /dev/sda1 for paravirtual).')
    .option('--virtualization-type <TYPE>', 'With --register: hvm or paravirtual (default: detected from the image).')
    .option('--ena-support', 'With --register: the AMI supports ENA networking (hvm only).')
    .option('--dry-run', 'Read the bundle and print what would be done, writing nothing and calling no mutating API.')
    .option('--keep-partial', 'With --snapshot: after a failure, leave the incomplete snapshot instead of deleting it.')
    .option('--staging-dir <DIRECTORY>', 'Where the sparse staging file goes when --snapshot edits /etc/fstab (default: TMPDIR or /tmp).');
  addS3Options(cmd, { withoutShort: ['-s'] });
  const concurrency = cmd.options.find((opt) => opt.long === '--concurrency')!;
  concurrency.description = `With --snapshot: PutSnapshotBlock requests in parallel, each holding 512 KiB (default: ${DEFAULT_CONCURRENCY}).`;
  return markMandatory(cmd, '--privatekey', '--manifest');
};


function wholeNumber(value: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw invalidValue(flag, value, `a whole number from ${min} to ${max} is required`);
  return Number(value);
}

/** Every flag checked before anything is read or written. */
function checkFlags(o: Flags, cmd: Command): void {
  requireFile(o.privatekey, '--privatekey');
  checkBundleSource(o, cmd, S3_ONLY);
  if (o.cert !== undefined) requireFile(o.cert, '--cert');
  checkCredentialFlags(o);
  if (Boolean(o.snapshot) === (o.device !== undefined)) throw new UsageError('say where the image goes: --snapshot (a new EBS snapshot) or --device PATH (an attached volume), one of them');
  const only = (names: string[], what: string, ok: boolean) => {
    const bad = names.find((n) => given(cmd, n));
    if (bad && !ok) throw new UsageError(`${flagName(bad)} applies to ${what} only`);
  };
  only(['volumeId', 'deviceZeroed'], '--device', o.device !== undefined);
  only(['size', 'encrypted', 'kmsKeyId', 'keepPartial', 'concurrency', 'stagingDir'], '--snapshot', Boolean(o.snapshot));
  only(['volumeType', 'rootDeviceName', 'virtualizationType', 'enaSupport'], '--register', o.register !== undefined);
  if (o.kmsKeyId !== undefined && !o.encrypted) throw new UsageError('--kms-key-id needs --encrypted');
  if (o.size !== undefined) wholeNumber(o.size, '--size', 1, 65536);
  if (o.concurrency !== undefined) wholeNumber(o.concurrency, '--concurrency', 1, MAX_CONCURRENCY);
  if (o.volumeId !== undefined && !/^vol-[0-9a-f]{8}([0-9a-f]{9})?$/.test(o.volumeId)) throw invalidValue('--volume-id', o.volumeId, 'a volume id (vol- and 8 or 17 hexadecimal digits) is required');
  if (o.register !== undefined && o.device !== undefined && o.volumeId === undefined) {
    throw new UsageError('--register needs a snapshot: with --device, give --volume-id so the volume is snapshotted');
  }
  if (!ROOT_VOLUME_TYPES.includes(o.volumeType)) throw invalidValue('--volume-type', o.volumeType, `Please specify one of these values: ${ROOT_VOLUME_TYPES.join(', ')}`);
  if (o.virtualizationType !== undefined && !(VIRTUALIZATION_TYPES as readonly string[]).includes(o.virtualizationType)) {
    throw invalidValue('--virtualization-type', o.virtualizationType, `Please specify one of these values: ${VIRTUALIZATION_TYPES.join(', ')}`);
  }
  if (o.enaSupport && o.virtualizationType === 'paravirtual') throw new UsageError('--ena-support needs an hvm image');
  if (o.rootDeviceName !== undefined && !/^\/dev\/[a-z0-9]+$/.test(o.rootDeviceName)) throw invalidValue('--root-device-name', o.rootDeviceName, 'a device name such as /dev/xvda or /dev/sda1 is required');
  for (const t of o.tag) if (!/^[^=]+=/.test(t)) throw invalidValue('--tag', t, 'KEY=VALUE is required');
  if (o.device !== undefined) checkDevice(o.device);
  if (o.stagingDir !== undefined) requireWritableDirectory(o.stagingDir, '--staging-dir');
}

/** --device: an existing block device or regular file, or a new file in an existing directory. */
function checkDevice(path: string): void {
  let st;
  try { st = statSync(path); } catch { /* a new file */ }
  if (st && !st.isBlockDevice() && !st.isFile()) throw invalidValue('--device', path, 'a block device or a regular file is required');
  if (!st && !writableParent(path)) throw invalidValue('--device', path, 'no such device, and its directory does not exist or is not writable for a file');
}

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Flags>(command(), argv, async (o, cmd, signal) => {
    checkFlags(o, cmd);
    if (o.register !== undefined) (await import('../bundle/register.js')).checkRegistration(o.register, o.description);
    const reporter = new Reporter(o);
    const [{ convertToEbs, DRY_RUN_SNAPSHOT }, { S3_PREFETCH }, { DirectoryStore }, { loadProfile, configuredRegion }, { registerImageCommandLine }] = await Promise.all([
      import('../bundle/convert-to-ebs.js'), import('../bundle/unbundle.js'), import('../store/directory-store.js'), import('../aws/config.js'), import('../bundle/register.js'),
    ]);
    const profile = await loadProfile(o.profile);
    const target = o.bucket !== undefined ? await targetFromFlags({ ...o, bucket: o.bucket, concurrency: undefined }, reporter) : undefined;
    const region = target?.region ?? configuredRegion(o.region, undefined, profile)?.value ?? 'us-east-1';
    const credentials = { accessKey: o.accessKey, secretKey: o.secretKey, delegationToken: o.delegationToken, profile };
    const onRetry = announceRetry(reporter);
    // The EC2 SDK (~70 MB) is loaded only when EC2 is called: after the image was streamed.
    let ec2Factory: Ec2ClientFactory | undefined;
    const ec2 = async (r: string) => (ec2Factory ??= (await import('../ec2/client.js')).ec2ClientFactory({ ...credentials, onRetry }))(r);
    const concurrency = o.concurrency !== undefined ? Number(o.concurrency) : DEFAULT_CONCURRENCY;
    let ebs;
    if (o.snapshot && !o.dryRun) {
      const { ebsClient } = await import('../ebs/client.js');
      const { RETRY_FLAG_ATTEMPTS } = await import('../aws/retry.js');
      // EBS throttles block writes as a matter of course: they get more tries than other requests.
      ebs = ebsClient({ ...credentials, region, concurrency, retry: { attempts: o.retry ? 2 * RETRY_FLAG_ATTEMPTS : RETRY_FLAG_ATTEMPTS, baseDelayMs: 250, maxDelayMs: 10_000, onRetry } });
    }
    const manifestName = o.manifest ?? `${o.prefix ?? 'image'}.manifest.xml`;
    const tags = o.tag.map((t) => ({ Key: t.slice(0, t.indexOf('=')), Value: t.slice(t.indexOf('=') + 1) }));
    let label = 'Unbundling';
    let lastPercent: string | undefined;
    try {
      let store;
      if (target) {
        const { S3Store } = await import('../store/s3-store.js');
        store = new S3Store(target, { signal });
      } else {
        store = new DirectoryStore(o.source, { signal });
      }
      const source = target ? `${store.location}${manifestName}` : o.manifest!;
      reporter.line(`${o.dryRun ? 'Dry run: reading' : 'Converting'} ${displayText(source)} ...`);
      const result = await convertToEbs({
        manifest: target ? { name: manifestName } : { path: o.manifest! },
        store, privateKeyPath: o.privatekey!, certPath: o.cert, prefetch: target ? S3_PREFETCH : 0,
        target: o.snapshot
          ? { kind: 'snapshot', ebs: ebs!, sizeGiB: o.size !== undefined ? Number(o.size) : undefined, encrypted: o.encrypted, kmsKeyArn: o.kmsKeyId, concurrency, keepPartial: o.keepPartial }
          : { kind: 'device', path: o.device!, zeroed: o.deviceZeroed, volumeId: o.volumeId },
        fixFstab: !o.keepFstab,
        description: o.description, tags,
        register: o.register === undefined ? undefined : {
          name: o.register, description: o.description, volumeType: o.volumeType, rootDeviceName: o.rootDeviceName,
          virtualizationType: o.virtualizationType as 'hvm' | 'paravirtual' | undefined, enaSupport: o.enaSupport,
        },
        ec2, region, dryRun: o.dryRun, stagingDir: o.stagingDir, signal,
        onEvent: (e) => {
          if (e.type === 'progress') reporter.progress(label, e.bytes, e.totalBytes);
          else if (e.type === 'warning') reporter.warn(e.message);
          else if (e.type !== 'step') return;
          else if (e.step === 'unbundling') label = o.snapshot && o.keepFstab ? 'Writing the snapshot' : o.device ? `Writing ${o.device}` : 'Unbundling to the staging file';
          else if (e.step === 'snapshot-started') reporter.line(`Snapshot ${e.name} started.`);
          else if (e.step === 'writing-snapshot') label = 'Writing the snapshot';
          else if (e.step === 'waiting-for-snapshot' && e.name !== lastPercent) { lastPercent = e.name; reporter.stop(); reporter.line(`Waiting for the snapshot to complete: ${e.name}`); }
          else if (e.step === 'fstab-entry-removed') reporter.line(`Removed from /etc/fstab: ${e.name}`);
          else if (e.step === 'creating-snapshot') reporter.line(`Creating a snapshot of ${e.name} ...`);
          else if (e.step === 'snapshot-completed') { reporter.stop(); reporter.line(`SNAPSHOT ${e.name}`); }
          else if (e.step === 'registering-image') reporter.line(`Registering ${e.name} ...`);
        },
      });
      reporter.stop();
      const fstab = result.fstab;
      if (fstab?.status === 'skipped') reporter.warn(`WARNING: /etc/fstab left as it is: ${fstab.reason}.`);
      else if (fstab?.status === 'unchanged') reporter.line('/etc/fstab has no instance-store entries: left as it is.');
      else if (fstab?.status === 'edited') reporter.line(`The old /etc/fstab is kept in the image as ${fstab.origName}.`);
      const vt = result.virtualization;
      if (o.size !== undefined && result.snapshotSizeGiB !== undefined && Number(o.size) < result.snapshotSizeGiB) {
        reporter.warn(`--size ${o.size} is smaller than the image: the snapshot is ${result.snapshotSizeGiB} GiB.`);
      }
      if (o.dryRun) {
        reporter.line(`Image: ${formatBytes(result.imageSize)} (${result.imageSize} bytes)`);
        if (result.snapshotSizeGiB) reporter.line(`Snapshot: ${result.snapshotSizeGiB} GiB${o.encrypted ? ', encrypted' : ''}`);
        if (o.device) reporter.line(`Device: ${o.device}${o.volumeId ? `, then a snapshot of ${o.volumeId}` : ''}`);
        reporter.line(`Virtualization type: ${vt.type ?? 'unknown'} (the image is ${vt.reason})`);
        if (fstab?.status === 'planned') {
          for (const r of fstab.removed) reporter.line(`Would remove from /etc/fstab: ${r.text}`);
          reporter.line(`The old /etc/fstab would be kept as ${fstab.origName}. (Read through a ${formatBytes(result.stagedBytes)} staging file, now removed.)`);
        }
        if (result.registerRequest) reporter.line(`Would register: ${registerImageCommandLine(result.registerRequest, region)}`);
        reporter.line('Dry run: nothing was written.');
      } else if (o.register !== undefined && !o.virtualizationType && !vt.type) {
        reporter.warn(`Notice: virtualization type unknown (the image is ${vt.reason}), so EC2 registered the AMI as paravirtual; set it with --virtualization-type hvm|paravirtual.`);
      }
      if (result.imageId) reporter.line(`IMAGE ${result.imageId}`);
      if (!o.dryRun) reporter.line('Conversion complete.');
      return {
        source, region, dryRun: result.dryRun, imageSize: result.imageSize,
        ...(result.snapshotSizeGiB ? { snapshotSizeGiB: result.snapshotSizeGiB } : {}),
        ...(result.snapshotId ? { snapshotId: result.snapshotId } : {}),
        ...(result.imageId ? { imageId: result.imageId } : {}),
        virtualizationType: o.virtualizationType ?? vt.type ?? null,
        fstab: fstab ? { status: fstab.status, ...('removed' in fstab ? { removed: fstab.removed.map((r) => r.text) } : {}), ...('origName' in fstab ? { original: fstab.origName } : {}), ...('reason' in fstab ? { reason: fstab.reason } : {}) } : null,
        ...(result.registerRequest ? { registerImage: { ...result.registerRequest, ...(o.dryRun ? { snapshotPlaceholder: DRY_RUN_SNAPSHOT } : {}) } } : {}),
        stagedBytes: result.stagedBytes,
      };
    } finally {
      reporter.stop();
      target?.client.destroy();
      ec2Factory?.(region).destroy();
      ebs?.destroy();
    }
  });
}
