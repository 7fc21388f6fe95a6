import type { X509Certificate } from 'node:crypto';
import { chmod, link, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { ToolError, UsageError } from '../errors.js';
import { ec2CertFileName, findEc2Certificate } from '../crypto/ec2-cert.js';
import {
  assertKeyMatchesCertificate, encryptForCertificate, loadCertificate, loadPrivateKey, signHex, verifyHex,
} from '../crypto/keys.js';
import type { Ec2ClientFactory } from '../ec2/client.js';
import { mapKernelAndRamdisk } from '../ec2/mapping.js';
import { decryptBundleKey } from './unbundle.js';
import { tempPathBeside } from '../stream/atomic-write.js';
import { ManifestError, buildManifestXml, buildSignedText, parseManifest, signedSubstring, type Manifest } from '../format/manifest.js';

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
  const bad = (msg: string) => new ToolError(`Bad manifest '${path}': ${msg}`);
  const raw = await readManifestFile(path);
  const xml = raw.toString('utf8');
  let source: Manifest & { signature: string };
  try {
    source = parseManifest(xml);
  } catch (err) {
    if (err instanceof ManifestError) throw bad(err.message.replace(/^Invalid manifest: /, ''));
    throw err;
  }

  const cert = loadCertificate(o.certPath);
  if (!verifyHex(cert, signedSubstring(xml), source.signature)) throw bad('Manifest fails authentication.');
  const key = loadPrivateKey(o.privateKeyPath);
  assertKeyMatchesCertificate(key, cert, o.privateKeyPath, o.certPath);

  const backupPath = `${path}.bak`;
  if (await exists(backupPath)) throw backupExists(backupPath);

  const { kernelId, ramdiskId } = await chooseKernelAndRamdisk(o, source);
  if ((source.kernelId && !kernelId) || (source.ramdiskId && !ramdiskId)) {
    if (!(await o.confirm(REMOVAL_WARNING))) throw cancelled(path);
  }

  const { signature: _old, ...kept } = source;
  const migrated: Manifest = { ...kept, kernelId, ramdiskId };
  const ec2Key = await ec2Encryption(o, source, key, migrated);

  const signed = buildSignedText(migrated);
  const signature = signHex(key, signed);
  const out = buildManifestXml(migrated, signature);
  // The file we write must verify the way EC2 and we check it: the exact substring, against -c.
  if (signedSubstring(out) !== signed || !verifyHex(cert, signed, signature)) {
    throw new ToolError(`internal error: the migrated manifest for '${path}' does not verify; nothing was written`);
  }

  const mode = (await stat(path)).mode & 0o7777;
  // A symlinked manifest is rewritten where it points, as the original's in-place write did.
  const target = await realpath(path);
  o.onBackup?.(backupPath);
  await writeNew(backupPath, raw, mode, true);
  await writeNew(target, Buffer.from(out, 'utf8'), mode, false);
  return { manifestPath: path, backupPath, manifest: migrated, ec2Key };
}

async function readManifestFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'File not found.'
      : code === 'EISDIR' ? 'it is a directory, not a manifest file.'
      : code === 'EACCES' || code === 'EPERM' ? 'cannot read it: permission denied.'
      : `cannot read it: ${(err as Error).message}`;
    throw new ToolError(`Bad manifest '${path}': ${why}`, { cause: err });
  }
}

async function chooseKernelAndRamdisk(o: MigrateOptions, m: Manifest): Promise<{ kernelId?: string; ramdiskId?: string }> {
  if (!o.mapping) return { kernelId: o.kernelId, ramdiskId: o.ramdiskId };
  if (!o.region) throw new UsageError('If using automatic mapping, --region must be provided.');
  if (!o.clients) throw new Error('migrateManifest: mapping needs EC2 clients');
  const r = await mapKernelAndRamdisk({
    clients: o.clients, targetRegion: o.region, debug: o.debug,
    manifestKernelId: m.kernelId, manifestRamdiskId: m.ramdiskId, kernelId: o.kernelId, ramdiskId: o.ramdiskId,
  });
  if (r.missingInTarget.length > 0) {
    const warning = `The following identifiers do not exist in the target region:\n  [${r.missingInTarget.join(', ')}]`;
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
  const { keyHex, ivHex } = decryptBundleKey(source, key, o.privateKeyPath);
  migrated.ec2EncryptedKey = encryptForCertificate(ec2Cert, keyHex);
  migrated.ec2EncryptedIv = encryptForCertificate(ec2Cert, ivHex);
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
      throw new ToolError(`--keep-ec2-key: the manifest's ${what} was not encrypted for ${certPath} (${hex.length * 4}-bit value, ${digits * 4}-bit key); drop --keep-ec2-key to re-encrypt it for that certificate`);
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

/**
 * Writes data to a temporary name beside `target`, then moves it there: with `exclusive`, by link (fails if the
 * target appeared meanwhile), otherwise by rename over it.
 */
async function writeNew(target: string, data: Buffer, mode: number, exclusive: boolean): Promise<void> {
  const tmp = tempPathBeside(target);
  try {
    await writeFile(tmp, data, { flag: 'wx', mode });
    await chmod(tmp, mode); // exactly the manifest's mode, whatever the umask
    if (exclusive) {
      try {
        await link(tmp, target);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw backupExists(target);
        // A filesystem without hard links: an exclusive create is the next best thing.
        if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(code ?? '')) throw err;
        await writeFile(target, data, { flag: 'wx', mode }).catch((e: NodeJS.ErrnoException) => {
          throw e.code === 'EEXIST' ? backupExists(target) : e;
        });
      }
      await unlink(tmp);
    } else {
      await rename(tmp, target);
    }
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if (err instanceof ToolError) throw err;
    throw new ToolError(`cannot write '${target}': ${(err as Error).message}`, { cause: err });
  }
}
