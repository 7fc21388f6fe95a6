import type { BlockDeviceMapping as Ec2BlockDeviceMapping, RegisterImageCommandInput } from '@aws-sdk/client-ec2';
import { UsageError } from '../errors.js';
import type { Ec2ClientFactory } from '../ec2/client.js';
import { ec2Error } from '../ec2/errors.js';
import type { VirtualizationType } from '../format/disk-detect.js';
import type { Manifest } from '../format/manifest.js';

export interface RegisterOptions {
  clients: Ec2ClientFactory;
  /** The region to register in: the bucket's. */
  region: string;
  /** Where EC2 reads the manifest: BUCKET/KEY. */
  imageLocation: string;
  /** The bundle's manifest: architecture, kernel, ramdisk and block device mappings come from it. */
  manifest: Pick<Manifest, 'architecture' | 'kernelId' | 'ramdiskId' | 'blockDeviceMappings'>;
  name: string;
  description?: string;
  /** Absent: EC2's default (paravirtual). */
  virtualizationType?: VirtualizationType;
}

export interface RegisterResult {
  imageId: string;
  region: string;
  /** What was sent. */
  request: RegisterImageCommandInput;
}

// EC2's rule for image names and its limit for descriptions (RegisterImage).
const NAME = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;
const MAX_DESCRIPTION = 255;

/** Refuses a name or description EC2 would refuse, before anything is uploaded. */
export function checkRegistration(name: string, description?: string): void {
  if (!NAME.test(name)) {
    throw new UsageError(`the image name '${name}' is not one EC2 accepts: 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _`);
  }
  if (description !== undefined && description.length > MAX_DESCRIPTION) {
    throw new UsageError(`the image description is ${description.length} characters long; EC2 accepts at most ${MAX_DESCRIPTION}`);
  }
}

/**
 * The manifest's block device mappings as RegisterImage takes them for an instance-store image: ephemeralN as
 * VirtualName entries on their device, root as RootDeviceName. `ami` (the image itself, found through ImageLocation)
 * and `swap` (no virtual name in the API) are not sent; EC2 still reads them from the manifest.
 */
export function launchMappings(mappings: readonly { virtual: string; device: string }[]): { blockDeviceMappings: Ec2BlockDeviceMapping[]; rootDeviceName?: string } {
  const blockDeviceMappings = mappings
    .filter((m) => /^ephemeral\d+$/.test(m.virtual))
    .map((m) => ({ DeviceName: m.device, VirtualName: m.virtual }));
  return { blockDeviceMappings, rootDeviceName: mappings.find((m) => m.virtual === 'root')?.device };
}

/** The RegisterImage request for a bundle. */
export function registerImageInput(o: Omit<RegisterOptions, 'clients' | 'region'>): RegisterImageCommandInput {
  const { blockDeviceMappings, rootDeviceName } = launchMappings(o.manifest.blockDeviceMappings);
  return {
    ImageLocation: o.imageLocation,
    Name: o.name,
    ...(o.description !== undefined ? { Description: o.description } : {}),
    Architecture: o.manifest.architecture as RegisterImageCommandInput['Architecture'],
    ...(o.manifest.kernelId ? { KernelId: o.manifest.kernelId } : {}),
    ...(o.manifest.ramdiskId ? { RamdiskId: o.manifest.ramdiskId } : {}),
    ...(rootDeviceName ? { RootDeviceName: rootDeviceName } : {}),
    ...(blockDeviceMappings.length ? { BlockDeviceMappings: blockDeviceMappings } : {}),
    ...(o.virtualizationType ? { VirtualizationType: o.virtualizationType } : {}),
  };
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The `aws ec2 register-image` command that sends the same request (--region when it is not us-east-1). */
export function registerImageCommandLine(input: RegisterImageCommandInput, region: string): string {
  // No image location for an EBS-backed AMI: its root is a snapshot in the block device mappings.
  const location = input.ImageLocation === undefined ? [] : ['--image-location', input.ImageLocation];
  const args: string[] = ['aws', 'ec2', 'register-image', ...location, '--name', input.Name ?? 'NAME'];
  if (input.Description !== undefined) args.push('--description', input.Description);
  if (input.Architecture) args.push('--architecture', input.Architecture);
  if (input.VirtualizationType) args.push('--virtualization-type', input.VirtualizationType);
  if (input.KernelId) args.push('--kernel-id', input.KernelId);
  if (input.RamdiskId) args.push('--ramdisk-id', input.RamdiskId);
  if (input.RootDeviceName) args.push('--root-device-name', input.RootDeviceName);
  if (input.BlockDeviceMappings?.length) {
    args.push('--block-device-mappings', ...input.BlockDeviceMappings.map((m) => (m.Ebs
      ? `DeviceName=${m.DeviceName},Ebs={SnapshotId=${m.Ebs.SnapshotId},DeleteOnTermination=${m.Ebs.DeleteOnTermination},VolumeType=${m.Ebs.VolumeType}}`
      : `DeviceName=${m.DeviceName},VirtualName=${m.VirtualName}`)));
  }
  if (input.EnaSupport) args.push('--ena-support');
  if (region !== 'us-east-1') args.push('--region', region);
  return args.map((a, i) => (i < 3 ? a : shellWord(a))).join(' ');
}

const HINTS: Record<string, string> = {
  InvalidManifest: 'EC2 cannot read the manifest: check that it is in the bucket, readable by EC2 (--acl aws-exec-read) and that the bucket is in this region',
  'InvalidAMIName.Duplicate': 'choose another name, or deregister the image that has it',
  'InvalidAMIName.Malformed': "use 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _",
};

/** Registers an instance-store AMI from a bundle in S3 (RegisterImage); its id. An EC2 error is one line naming the call. */
export async function registerImage(o: RegisterOptions): Promise<RegisterResult> {
  checkRegistration(o.name, o.description);
  const request = registerImageInput(o);
  // The EC2 SDK (80 MB resident) is loaded only to send: the checks and the printed command need none of it.
  const { sendRegisterImage } = await import('../ec2/images.js');
  try {
    const imageId = await sendRegisterImage(o.clients(o.region), request);
    return { imageId, region: o.region, request };
  } catch (err) {
    throw ec2Error(err, `RegisterImage of ${o.imageLocation} in ${o.region} failed`, 'RegisterImage', HINTS);
  }
}
