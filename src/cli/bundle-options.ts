import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { findEc2Certificate } from '../crypto/ec2-cert.js';
import type { BlockDeviceMapping } from '../format/manifest.js';
import { invalidValue, requireDirectory, requireFile, requireOption } from './command.js';
import { ask, canPrompt } from './prompt.js';
import type { Reporter } from './reporter.js';
import { bundleImage, DEFAULT_GZIP_LEVEL, type BundleOptions, type BundleResult } from '../bundle/bundle-image.js';
import type { EventHandler } from '../events.js';
import { DirectoryStore } from '../store/directory-store.js';
import { bundleDocument } from './result.js';

/** The flags ec2-bundle-image and ec2-bundle-vol share, as commander parses them. */
export interface BundleFlags {
  cert?: string;
  privatekey?: string;
  user?: string;
  destination: string;
  ec2cert?: string;
  arch?: string;
  productcodes?: string;
  blockDeviceMapping?: string;
  kernel?: string;
  ramdisk?: string;
  compressionLevel?: string;
  threads?: string;
  batch?: boolean;
  debug?: boolean;
}

/** What those flags resolve to, ready for bundleImage(). */
export interface ResolvedBundleFlags {
  userCertPath: string;
  userKeyPath: string;
  user: string;
  destination: string;
  ec2CertPath: string;
  arch: string;
  productCodes?: string[];
  blockDeviceMappings?: BlockDeviceMapping[];
  kernelId?: string;
  ramdiskId?: string;
  compressionLevel: number;
  threads?: number;
}

/** The architectures EC2's RegisterImage accepts: a manifest with another value makes a bundle it refuses. */
export const SUPPORTED_ARCHS = ['i386', 'x86_64', 'arm64', 'x86_64_mac', 'arm64_mac'];

/** Other names for those (Debian's, the kernel's, Node's), mapped with a notice rather than refused. */
const ARCH_ALIASES: Record<string, string> = {
  amd64: 'x86_64', x64: 'x86_64', 'x86-64': 'x86_64', aarch64: 'arm64', i686: 'i386', i586: 'i386', i486: 'i386', x86: 'i386', ia32: 'i386',
};

export function addBundleFlags(cmd: Command): Command {
  return cmd
    .option('-c, --cert <path>', "The path to the user's PEM encoded RSA public key certificate file.")
    .option('-k, --privatekey <path>', "The path to the user's PEM encoded RSA private key file.")
    .option('-u, --user <user>', "The user's EC2 user ID (Note: AWS account number, NOT Access Key ID).")
    .option('-d, --destination <path>', 'The directory to create the bundle in.', '/tmp')
    .option('--ec2cert <path>', "The path to the EC2 X509 public key certificate bundled into the AMI (default: found by region, see the manual).")
    .addOption(new Option('-r, --arch <architecture>', `Specify target architecture. One of ${JSON.stringify(SUPPORTED_ARCHS)} (amd64, aarch64, i686 are mapped). Default: this machine's, asked on a terminal.`))
    .option('--productcodes <code1,code2,...>', 'Default product codes attached to the image at registration time.')
    .option('-B, --block-device-mapping <maps>', "Default block-device-mapping scheme to launch the AMI with, e.g. 'ami=sda1,root=/dev/sda1,ephemeral0=sda2,swap=sda3'.")
    .option('--kernel <id>', 'Id of the default kernel to launch the AMI with.')
    .option('--ramdisk <id>', 'Id of the default ramdisk to launch the AMI with.')
    .option('--compression-level <N>', `gzip level from 0 (none) to 9 (smallest, slowest) (default: ${DEFAULT_GZIP_LEVEL}).`)
    .option('--threads <N>', 'Compress with at most N threads (default: one per core).');
}

/** A whole number in [min, max] given to a flag. */
function parseWhole(value: string, flag: string, min: number, max: number): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw invalidValue(flag, value, `must be a whole number from ${min} to ${max}`);
  return n;
}

/** The user id: 12 digits, hyphens allowed and removed. */
export function parseUserId(value: string): string {
  const digits = value.replace(/-/g, '');
  if (!/^\d{12}$/.test(digits)) {
    throw invalidValue('--user', value, 'the user ID should consist of 12 digits (optionally hyphenated); this should not be your Access Key ID');
  }
  return digits;
}

export function machineArch(): string {
  return ({ x64: 'x86_64', ia32: 'i386', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
}

/**
 * -r; without it this machine's architecture, offered at a prompt on a terminal (the original's behaviour: in batch
 * mode, or when nobody answers, it takes uname's). A name EC2 knows under another name is mapped with a notice;
 * anything else is refused, never written into a manifest that registration would reject.
 */
export async function resolveArch(value: string | undefined, batch: boolean | undefined, reporter: Reporter): Promise<string> {
  let arch = value;
  if (!arch) {
    arch = canPrompt(batch) ? await ask(`Please specify a value for arch [${machineArch()}]: `, machineArch()) : machineArch();
  }
  const mapped = ARCH_ALIASES[arch.toLowerCase()];
  if (mapped) {
    reporter.warn(`Architecture '${arch}' is called '${mapped}' by EC2: bundling for ${mapped}.`);
    arch = mapped;
  }
  if (!SUPPORTED_ARCHS.includes(arch)) {
    throw invalidValue('--arch', arch, `EC2 accepts only ${SUPPORTED_ARCHS.join(', ')}${value ? '' : " (this machine's architecture); pass -r"}`);
  }
  return arch;
}

/** Validates the shared flags in the original's order and wording; prints the -B warnings. */
export async function resolveBundleFlags(o: BundleFlags, reporter: Reporter): Promise<ResolvedBundleFlags> {
  const userCertPath = requireFile(o.cert, '--cert');
  const userKeyPath = requireFile(o.privatekey, '--privatekey');
  const user = parseUserId(requireOption(o.user, '--user'));
  const destination = requireDirectory(o.destination, '--destination');
  const compressionLevel = o.compressionLevel === undefined ? DEFAULT_GZIP_LEVEL : parseWhole(o.compressionLevel, '--compression-level', 0, 9);
  const threads = o.threads === undefined ? undefined : parseWhole(o.threads, '--threads', 1, 1024);
  if (o.ec2cert !== undefined) requireFile(o.ec2cert, '--ec2cert');
  const blockDeviceMappings = o.blockDeviceMapping !== undefined ? parseBlockDeviceMappingFlag(o.blockDeviceMapping) : undefined;
  const arch = await resolveArch(o.arch, o.batch, reporter);
  const ec2CertPath = findEc2Certificate({ explicit: o.ec2cert });
  if (blockDeviceMappings) for (const w of missingMappingWarnings(blockDeviceMappings)) reporter.line(w);
  return {
    userCertPath,
    userKeyPath,
    user,
    destination,
    ec2CertPath,
    arch,
    productCodes: o.productcodes ? [o.productcodes] : undefined,
    blockDeviceMappings,
    kernelId: o.kernel,
    ramdiskId: o.ramdisk,
    compressionLevel,
    threads,
  };
}

/** "./name" with -d ., as the original prints paths. */
export function displayPath(dir: string, name: string): string {
  return `${dir.replace(/\/+$/, '') || '/'}/${name}`.replace(/^\/\//, '/');
}

/** The original's lines (and a progress line on a terminal) for the events of a bundling; `verb` for each part. */
export function bundleEvents(reporter: Reporter, verb = 'Created'): EventHandler {
  return (e) => {
    if (e.type === 'progress') reporter.progress('Bundling', e.bytes, e.totalBytes);
    else if (e.type === 'part') reporter.line(`${verb} ${e.name}`);
  };
}

/**
 * Where a bundling goes, for both bundling commands: -d (directorySink), or S3 with a copy of the manifest in -d
 * (src/cli/bundle-s3.ts). What the store needs of bundleImage, the lines for its events, and what follows.
 */
export interface BundleSink {
  bundleOptions: Pick<BundleOptions, 'store' | 'partsInFlight' | 'keepPartial' | 'manifestCopyDir'>;
  onEvent: EventHandler;
  /** The lines after the manifest lines, and the --output json fields they add. */
  finish(result: BundleResult, image: string): Promise<Record<string, unknown>>;
  close(): void;
}

/** The original's: parts and manifest into -d. */
export function directorySink(reporter: Reporter, destination: string, signal?: AbortSignal): BundleSink {
  return { bundleOptions: { store: new DirectoryStore(destination, { signal }) }, onEvent: bundleEvents(reporter), finish: async () => ({}), close() {} };
}

/** The lines after a bundling, and the --output json fields of the bundle in -d. */
export async function reportBundle(reporter: Reporter, destination: string, result: BundleResult): Promise<Record<string, unknown>> {
  reporter.stop();
  reporter.line('Creating bundle manifest...');
  reporter.line(`Bundle manifest is ${displayPath(destination, result.manifestName)}`);
  return { manifest: join(destination, result.manifestName), ...(await bundleDocument(result.manifest, destination)) };
}

/** Bundles into the sink with the original's output lines; resolves to the --output json fields. */
export async function bundleAndReport(reporter: Reporter, sink: BundleSink, options: Omit<BundleOptions, 'onEvent' | 'store'> & { destination: string }): Promise<Record<string, unknown>> {
  reporter.line('Bundling image file...');
  try {
    const result = await bundleImage({ ...options, ...sink.bundleOptions, onEvent: sink.onEvent });
    const doc = await reportBundle(reporter, options.destination, result);
    return { ...doc, ...(await sink.finish(result, options.image)) };
  } finally {
    reporter.stop();
  }
}

// -B / --block-device-mapping

/** `-B 'ami=sda1,root=/dev/sda1'`: split on ',' then '=', trimmed; a repeated key keeps the last value. */
export function parseBlockDeviceMappingFlag(value: string, flag = '--block-device-mapping'): BlockDeviceMapping[] {
  const invalid = (reason: string) => invalidValue(flag, value, reason);
  if (value.trim() === '') throw invalid("expected comma-separated virtual=device pairs, e.g. 'ami=sda1,root=/dev/sda1'");
  const byVirtual = new Map<string, string>();
  for (const entry of value.split(',')) {
    const eq = entry.indexOf('=');
    const virtual = (eq < 0 ? entry : entry.slice(0, eq)).trim();
    const device = eq < 0 ? '' : entry.slice(eq + 1).trim();
    if (eq < 0 || virtual === '' || device === '' || device.includes('=') || /\s/.test(virtual) || /\s/.test(device)) {
      throw invalid(`'${entry.trim()}' is not a virtual=device pair (e.g. 'ami=sda1,root=/dev/sda1')`);
    }
    byVirtual.set(virtual, device);
  }
  return [...byVirtual].map(([virtual, device]) => ({ virtual, device }));
}

/** The original's warnings when -B lacks an 'ami' or a 'root' entry (printed on stdout by the CLI). */
export function missingMappingWarnings(mappings: BlockDeviceMapping[]): string[] {
  if (mappings.length === 0) return [];
  return ['root', 'ami']
    .filter((v) => !mappings.some((m) => m.virtual === v))
    .map((v) => `Block-device-mapping has no '${v}' entry. A launch-time default will be used.`);
}
