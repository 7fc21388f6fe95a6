import { createCommand, markMandatory, requireFile, runCommand, type CommonOptions } from './command.js';
import { UsageError } from '../errors.js';
import { canPrompt, confirm } from './prompt.js';
import { Reporter, announceRetry } from './reporter.js';
import { checkCredentialFlags } from './s3-options.js';

interface Flags extends CommonOptions {
  cert?: string;
  privatekey?: string;
  manifest?: string;
  accessKey?: string;
  secretKey?: string;
  ec2cert?: string;
  keepEc2Key?: boolean;
  kernel?: string;
  ramdisk?: string;
  mapping: boolean;
  region?: string;
  profile?: string;
}

const command = () => markMandatory(
  createCommand('ec2-migrate-manifest', "Rewrite a bundle's manifest for another region: kernel and ramdisk ids, EC2's copy of the key, signature.")
    .option('-c, --cert <path>', "The path to the user's PEM encoded RSA public key certificate file.")
    .option('-k, --privatekey <path>', "The path to the user's PEM encoded RSA private key file.")
    .option('-m, --manifest <path>', 'The path to the manifest file.')
    .option('-a, --access-key <key>', "The user's AWS access key ID (default: the SDK's chain: AWS_ACCESS_KEY_ID, profiles, instance role).")
    .option('-s, --secret-key <key>', "The user's AWS secret access key (with --access-key).")
    .option('--ec2cert <path>', "The EC2 X509 certificate to encrypt the key and IV for (default: the target region's, found like ec2-bundle-image).")
    .option('--keep-ec2-key', 'Keep the existing ec2_encrypted_key and ec2_encrypted_iv instead of re-encrypting them.')
    .option('--kernel <kernel_id>', 'Kernel id to bundle into the AMI.')
    .option('--ramdisk <ramdisk_id>', 'Ramdisk id to bundle into the AMI.')
    .option('--no-mapping', 'Do not perform automatic mappings.')
    .option('--region <region>', 'The region to migrate to (needed for automatic mapping; also picks the EC2 certificate).')
    .option('--profile <name>', 'The profile in ~/.aws/config and ~/.aws/credentials for the EC2 requests (default: AWS_PROFILE, else default).'),
  '--cert', '--privatekey', '--manifest');

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Flags>(command(), argv, async (o, _cmd, signal) => {
    const manifestPath = requireFile(o.manifest, '--manifest');
    const certPath = requireFile(o.cert, '--cert');
    const privateKeyPath = requireFile(o.privatekey, '--privatekey');
    if (o.ec2cert !== undefined) requireFile(o.ec2cert, '--ec2cert');
    if (o.mapping && !o.region) throw new UsageError('If using automatic mapping, --region must be provided.');
    checkCredentialFlags(o);
    const reporter = new Reporter(o);
    const [{ migrateManifest }, { ec2ClientFactory }, { loadProfile }] = await Promise.all([
      import('../bundle/migrate.js'), import('../ec2/client.js'), import('../aws/config.js')]);
    const clients = o.mapping ? ec2ClientFactory({ accessKey: o.accessKey, secretKey: o.secretKey, profile: await loadProfile(o.profile), onRetry: announceRetry(reporter) }) : undefined;
    const result = await migrateManifest({
      manifestPath, certPath, privateKeyPath,
      region: o.region, mapping: o.mapping, kernelId: o.kernel, ramdiskId: o.ramdisk, clients,
      ec2CertPath: o.ec2cert, keepEc2Key: o.keepEc2Key,
      confirm: async (warning) => {
        reporter.warn(warning);
        return canPrompt(o.batch) ? confirm('Are you sure you want to continue? [y/N] ') : true;
      },
      onBackup: (backupPath) => {
        reporter.line('Backing up manifest...');
        if (o.debug) reporter.warn(`Backup manifest at ${backupPath}`);
      },
      notice: (line) => reporter.warn(line),
      debug: o.debug ? (line) => reporter.warn(`DEBUG: ${line}`) : undefined,
      signal,
    });
    reporter.line(`Successfully migrated ${manifestPath}`);
    reporter.line(`It is now suitable for use in ${o.region ?? ''}.`);
    const m = result.manifest;
    return {
      manifest: result.manifestPath, backup: result.backupPath, ...(o.region ? { region: o.region } : {}),
      kernelId: m.kernelId ?? null, ramdiskId: m.ramdiskId ?? null,
      ec2Key: result.ec2Key.action === 'reencrypted' ? { action: 'reencrypted', certificate: result.ec2Key.certPath } : { action: 'kept', reason: result.ec2Key.reason },
    };
  });
}
