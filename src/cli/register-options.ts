import type { Command } from 'commander';
import { errorMessage, ToolError } from '../errors.js';
import type { CredentialFlags } from '../aws/credentials.js';
import { VIRTUALIZATION_TYPES, type Detection, type VirtualizationType } from '../format/disk-detect.js';
import type { Manifest } from '../format/manifest.js';
import { invalidValue } from './command.js';
import { announceRetry, type Reporter } from './reporter.js';

/** --register and its companions, as commander parses them. */
export interface RegisterFlags { register?: string; description?: string; virtualizationType?: string }

export function addRegisterOptions(cmd: Command): Command {
  return cmd
    .option('--register <NAME>', 'Then register the AMI under this name (EC2 RegisterImage) and print IMAGE ami-...')
    .option('--description <TEXT>', 'The AMI description, with --register (or in the printed register-image command).')
    .option('--virtualization-type <TYPE>', 'hvm or paravirtual (default: detected from the image where it can be, else EC2\'s: paravirtual).');
}

/** Checks the flags before anything is uploaded; the virtualization type they force, if any. */
export async function checkRegisterFlags(o: RegisterFlags): Promise<VirtualizationType | undefined> {
  const type = o.virtualizationType;
  if (type !== undefined && !(VIRTUALIZATION_TYPES as readonly string[]).includes(type)) {
    throw invalidValue('--virtualization-type', type, `Please specify one of these values: ${VIRTUALIZATION_TYPES.join(', ')}`);
  }
  if (o.register !== undefined) (await import('../bundle/register.js')).checkRegistration(o.register, o.description);
  return type as VirtualizationType | undefined;
}

/** Where the bundle is and what is known of it once its manifest is in the bucket. */
export interface Registration {
  flags: RegisterFlags & CredentialFlags;
  bucket: string;
  manifestKey: string;
  manifest: Manifest;
  region: string;
  /** --virtualization-type, else what detection found (its type may be undefined, with the reason). */
  virtualization?: VirtualizationType | Detection;
  /** How the user can let us detect the type, for the notice when it is unknown (e.g. "-k PRIVATEKEY"). */
  detectHint?: string;
}

/**
 * With --register: registers the AMI and prints `IMAGE ami-…` (stdout, in --batch too); an EC2 error is one line
 * saying the bundle stays where it is. Without: prints the complete `aws ec2 register-image` command. The AMI id, if any.
 */
export async function registerOrHint(reporter: Reporter, r: Registration): Promise<string | undefined> {
  const { registerImage, registerImageCommandLine, registerImageInput } = await import('../bundle/register.js');
  const v = r.virtualization;
  const detection = typeof v === 'string' ? undefined : v;
  const type = typeof v === 'string' ? v : v?.type;
  const imageLocation = `${r.bucket}/${r.manifestKey}`;
  const input = registerImageInput({ imageLocation, manifest: r.manifest, name: r.flags.register ?? 'NAME', description: r.flags.description, virtualizationType: type });
  const hint = `Register it with: ${registerImageCommandLine(input, r.region)}`;
  if (detection?.type) reporter.line(`Virtualization type: ${detection.type} (the image is ${detection.reason}).`);
  const why = detection ? ` (the image is ${detection.reason})` : '';
  const detect = r.detectHint ? `, or give ${r.detectHint} to detect it from the image` : '';
  if (r.flags.register === undefined) {
    reporter.line(hint);
    if (!type) reporter.line(`(Virtualization type unknown${why}: EC2 defaults to paravirtual. Add --virtualization-type hvm for a disk image with a boot loader${detect}.)`);
    return undefined;
  }
  if (!type) reporter.warn(`Notice: virtualization type unknown${why}, so EC2 registers the AMI as paravirtual; set it with --virtualization-type hvm|paravirtual${detect}.`);
  const { accessKey, secretKey, delegationToken } = r.flags;
  const { ec2ClientFactory } = await import('../ec2/client.js');
  const clients = ec2ClientFactory({ accessKey, secretKey, delegationToken, onRetry: announceRetry(reporter) });
  try {
    const { imageId } = await registerImage({ clients, region: r.region, imageLocation, manifest: r.manifest, name: r.flags.register, description: r.flags.description, virtualizationType: type });
    reporter.line(`IMAGE ${imageId}`);
    return imageId;
  } catch (err) {
    reporter.line(hint);
    throw new ToolError(`${errorMessage(err)}. The uploaded bundle is left in place at ${imageLocation}`, { cause: err, code: (err as ToolError).code ?? 'EC2_ERROR' });
  } finally {
    clients(r.region).destroy();
  }
}
