import type { X509Certificate } from 'node:crypto';
import { realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AmiToolsError, ToolError, UsageError, type ErrorCode } from '../errors.js';
import { ec2CertFileName, findEc2Certificate } from '../crypto/ec2-cert.js';
import {
  assertKeyMatchesCertificate, loadCertificate, loadPrivateKey, signHex,
} from '../crypto/keys.js';
import type { Ec2ClientFactory } from '../ec2/client.js';
import { mapKernelAndRamdisk } from '../ec2/mapping.js';
import { unwrapBundleKey, wrapFor } from '../crypto/key-envelope.js';
import { StagedFiles, sweepStaleTemporaries } from '../stream/atomic-write.js';
import { ManifestError, buildManifestXml, buildSignedText, parseManifest, type Manifest, type SignedManifest } from '../format/manifest.js';
import { readManifestBytes, signatureVerifies } from './manifest-file.js';
import { displayText } from '../format/display.js';

export interface MigrateOptions {
  manifestPath: string;
  /** -c: the manifest must verify against it. -k: decrypts the user copy of the key/IV and signs the new manifest. */
  certPath: string;
  privateKeyPath: string;
  region?: string;
  /** false with --no-mapping: --kernel/--ramdisk are taken as given (one not given is removed). */
  mapping: boolean;
  kernelId?: string;
  ramdiskId?: string;
  /** EC2 clients for the mapping (required when mapping). */
  clients?: Ec2ClientFactory;
  /** --ec2cert: the certificate to encrypt for; else the region's certificate, found like ec2-bundle-image does. */
  ec2CertPath?: string;
  /** --keep-ec2-key: keep ec2_encrypted_key/_iv as they are (what the original always did). */
  keepEc2Key?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Shows a warning and says whether to go on (the CLI prompts on a terminal unless --batch). */
  confirm: (warning: string) => Promise<boolean>;
  /** Called just before the backup is written (the CLI prints 'Backing up manifest...'). */
  onBackup?: (backupPath: string) => void;
  /** Things the user should know that are not failures (e.g. the EC2 fields were kept). */
  notice?: (line: string) => void;
  debug?: (line: string) => void;
  /** Stops the work: nothing is written after it fired, and the promise rejects. */
  signal?: AbortSignal;
}

export type Ec2KeyOutcome =
  | { action: 'reencrypted'; certPath: string }
  | { action: 'kept'; reason: 'requested' | 'no-certificate' };

export interface MigrateResult {
  manifestPath: string;
  backupPath: string;
  manifest: Manifest;
  ec2Key: Ec2KeyOutcome;
}

const REMOVAL_WARNING = [
  'This operation will remove the kernel and/or ramdisk associated with',
  'the AMI. This may cause the AMI to fail to launch unless you specify',
  'an appropriate kernel and ramdisk at launch time.',
].join('\n');

/**
 * ec2-migrate-manifest: verifies the manifest against the user's certificate, maps or replaces its kernel and ramdisk
 * ids, re-encrypts the AES key and IV for the target region's EC2 certificate, re-signs, keeps an exact copy in
 * '<manifest>.bak' and replaces the manifest (temporary file, then rename). Nothing is written until every check passed.
 */
export async function migrateManifest(o: MigrateOptions): Promise<MigrateResult> {
  const path = o.manifestPath;
  const bad = (msg: string, code: ErrorCode) => new ToolError(`Bad manifest '${path}': ${msg}`, { code });
  const raw = await readManifestBytes(path, (why) => `Bad manifest '${path}': ${why}.`);
  let source: SignedManifest;
  try {
    source = parseManifest(raw);
  } catch (err) {
    if (err instanceof ManifestError) throw bad(err.message.replace(/^Invalid manifest: /, ''), err.code);
    throw err;
  }

  // Verified by the one rule (over the text of the elements read); everything below works on `source` only.
  const cert = loadCertificate(o.certPath);
  if (!signatureVerifies(source, cert)) throw bad('Manifest fails authentication.', 'SIGNATURE_MISMATCH');
  const key = loadPrivateKey(o.privateKeyPath);
  assertKeyMatchesCertificate(key, cert, o.privateKeyPath, o.certPath);

  const backupPath = `${path}.bak`;
  if (await exists(backupPath)) throw backupExists(backupPath);

  const { kernelId, ramdiskId } = await chooseKernelAndRamdisk(o, source);
  if ((source.kernelId && !kernelId) || (source.ramdiskId && !ramdiskId)) {
    if (!(await o.confirm(REMOVAL_WARNING))) throw cancelled(path);
  }

  const { signature: _old, signedText: _text, spans: _spans, ...kept } = source;
  const migrated: Manifest = { ...kept, kernelId, ramdiskId };
  const ec2Key = await ec2Encryption(o, source, key, migrated);

  const signed = buildSignedText(migrated);
  const out = buildManifestXml(migrated, signHex(key, signed));
  // What we write must read back, by the same rule, as the verified content with only the migrated fields changed.
  const written = parseManifest(out);
  if (written.signedText !== signed || !signatureVerifies(written, cert) || unmigrated(written) !== unmigrated(source)) {
    throw new ToolError(`internal error: the migrated manifest for '${path}' does not verify; nothing was written`);
  }

  const mode = (await stat(path)).mode & 0o7777;
  // A symlinked manifest is rewritten where it points, as the original's in-place write did.
  const target = await realpath(path);
  o.signal?.throwIfAborted();
  o.onBackup?.(backupPath);
  for (const dir of new Set([dirname(backupPath), dirname(target)])) await sweepStaleTemporaries(dir);
  // The backup (never replacing an existing file) and the new manifest: both or neither.
  const staged = new StagedFiles({ signal: o.signal });
  try {
    await staged.write(backupPath, raw, { mode, exactMode: true, exclusive: true });
    await staged.write(target, out, { mode, exactMode: true });
    await staged.commit();
  } catch (err) {
    await staged.abort();
    // The backup appeared since it was checked.
    if (((err as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'EEXIST') throw backupExists(backupPath);
    if (err instanceof AmiToolsError) throw err;
    throw new ToolError(`cannot write '${target}': ${(err as Error).message}`, { cause: err });
  }
  return { manifestPath: path, backupPath, manifest: migrated, ec2Key };
}

/** The content with the fields a migration changes blanked: the same before and after a migration. */
function unmigrated(m: Manifest): string {
  const blanked = buildSignedText({ ...m, kernelId: undefined, ramdiskId: undefined, ec2EncryptedKey: '00', ec2EncryptedIv: '00' });
  return JSON.stringify([m.version, m.bundler.name, m.bundler.version, m.bundler.release, blanked]);
}

async function chooseKernelAndRamdisk(o: MigrateOptions, m: Manifest): Promise<{ kernelId?: string; ramdiskId?: string }> {
  if (!o.mapping) return { kernelId: o.kernelId, ramdiskId: o.ramdiskId };
  if (!o.region) throw new UsageError('automatic kernel and ramdisk mapping needs the target region', { option: 'region' });
  if (!o.clients) throw new Error('migrateManifest: mapping needs EC2 clients');
  const r = await mapKernelAndRamdisk({
    clients: o.clients, targetRegion: o.region, debug: o.debug,
    manifestKernelId: m.kernelId, manifestRamdiskId: m.ramdiskId, kernelId: o.kernelId, ramdiskId: o.ramdiskId,
  });
  if (r.missingInTarget.length > 0) {
    const warning = `The following identifiers do not exist in the target region:\n  [${r.missingInTarget.map((id) => displayText(id)).join(', ')}]`;
    if (!(await o.confirm(warning))) throw cancelled(o.manifestPath);
  }
  return { kernelId: r.kernelId, ramdiskId: r.ramdiskId };
}

/** Sets migrated.ec2Encrypted* for the target region's EC2 certificate, or keeps them (see --keep-ec2-key). */
async function ec2Encryption(o: MigrateOptions, source: Manifest, key: ReturnType<typeof loadPrivateKey>, migrated: Manifest): Promise<Ec2KeyOutcome> {
  if (o.keepEc2Key) {
    if (o.ec2CertPath !== undefined) assertEncryptedFor(loadCertificate(findEc2Certificate({ explicit: o.ec2CertPath })), o.ec2CertPath, source);
    return { action: 'kept', reason: 'requested' };
  }
  let certPath: string;
  try {
    certPath = findEc2Certificate({ explicit: o.ec2CertPath, region: o.region, env: o.env });
  } catch (err) {
    if (o.ec2CertPath !== undefined || !(err instanceof ToolError)) throw err;
    const file = ec2CertFileName(o.region);
    o.notice?.(`No EC2 certificate ${file} found for ${o.region ?? 'the target region'}: kept the existing ec2_encrypted_key and ec2_encrypted_iv. ` +
      `To re-encrypt them, pass --ec2cert or install ${file} (see certs/README.md).`);
    return { action: 'kept', reason: 'no-certificate' };
  }
  const ec2Cert = loadCertificate(certPath);
  const bundleKey = unwrapBundleKey(source, key, o.privateKeyPath);
  const ec2 = wrapFor(ec2Cert, bundleKey.key, bundleKey.iv);
  migrated.ec2EncryptedKey = ec2.encryptedKey;
  migrated.ec2EncryptedIv = ec2.encryptedIv;
  return { action: 'reencrypted', certPath };
}

/**
 * With --keep-ec2-key and --ec2cert: refuse when the kept fields cannot have been encrypted for that certificate
 * (wrong length, or not below its modulus). PKCS#1 v1.5 padding is random, so a positive proof is impossible.
 */
function assertEncryptedFor(cert: X509Certificate, certPath: string, m: Manifest): void {
  const jwk = cert.publicKey.export({ format: 'jwk' }) as { n?: string };
  const n = BigInt('0x' + Buffer.from(jwk.n ?? '', 'base64url').toString('hex'));
  const digits = 2 * Math.ceil(n.toString(16).length / 2);
  for (const [what, hex] of [['ec2_encrypted_key', m.ec2EncryptedKey], ['ec2_encrypted_iv', m.ec2EncryptedIv]] as const) {
    if (hex.length !== digits || BigInt('0x' + hex) >= n) {
      throw new ToolError(`the manifest's ${what} was not encrypted for ${certPath} (${hex.length * 4}-bit value, ${digits * 4}-bit key), so EC2's key cannot be kept; re-encrypt it for that certificate instead`, { option: 'keepEc2Key' });
    }
  }
}

function backupExists(backupPath: string): ToolError {
  return new ToolError(`Backup file '${backupPath}' already exists. Please delete or rename it and try again.`);
}

function cancelled(path: string): ToolError {
  return new ToolError(`Migration cancelled; '${path}' was left unchanged.`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
