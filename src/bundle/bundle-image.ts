import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { assertKeyMatchesCertificate, encryptForCertificate, loadCertificate, loadPrivateKey, signHex } from '../crypto/keys.js';
import { buildManifestXml, buildSignedText, toolBundler, type BlockDeviceMapping, type Manifest } from '../format/manifest.js';
import { ThreadedDigestTap } from '../stream/threaded-digest-tap.js';
import { createParallelGzip } from '../stream/gzip-parallel.js';
import { PartSink } from '../stream/part-sink.js';
import { createThreadedCipher } from '../stream/threaded-cipher.js';
import { createTarPack, describeImage } from '../stream/tar-pack.js';
import { writeFileAtomically } from '../stream/atomic-write.js';

export { DEFAULT_GZIP_LEVEL } from '../stream/gzip-parallel.js';

export interface BundleOptions {
  image: string;
  prefix?: string;
  destination: string;
  user: string;
  arch: string;
  userCertPath: string;
  userKeyPath: string;
  ec2CertPath: string;
  kernelId?: string;
  ramdiskId?: string;
  productCodes?: string[];
  blockDeviceMappings?: BlockDeviceMapping[];
  ancestry?: string[];
  kernelName?: string;
  /** gzip level, 0 (stored) to 9; default DEFAULT_GZIP_LEVEL. */
  compressionLevel?: number;
  /** Compression threads; default one per core. */
  threads?: number;
  onProgress?: (bytesRead: number, total: number) => void;
  onPart?: (filename: string) => void;
}

export interface BundleResult { manifestPath: string; manifest: Manifest; partPaths: string[] }

/**
 * Bundles an image in one pass: tar → SHA-1 → gzip → AES-128-CBC → 10 MiB parts (SHA-1 each), then the signed
 * manifest. Nothing is left under a final name unless the whole bundle was written.
 */
export async function bundleImage(o: BundleOptions): Promise<BundleResult> {
  const userKey = loadPrivateKey(o.userKeyPath);
  const userCert = loadCertificate(o.userCertPath);
  assertKeyMatchesCertificate(userKey, userCert, o.userKeyPath, o.userCertPath);
  const ec2Cert = loadCertificate(o.ec2CertPath);

  const name = o.prefix ?? o.image.split('/').pop()!;
  const source = await describeImage(o.image, name);
  const key = randomBytes(16);
  const iv = randomBytes(16);

  const total = source.sparseMap ? source.sparseMap.reduce((n, r) => n + r.length, 0) : source.size;
  const tap = new ThreadedDigestTap(o.onProgress && ((n) => o.onProgress!(Math.min(n, total), total)));
  const sink = new PartSink(o.destination, name);
  let written;
  try {
    await pipeline(createTarPack(source), tap, createParallelGzip({ level: o.compressionLevel, workers: o.threads }), createThreadedCipher(key, iv), sink);
    written = await sink.finish();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  for (const p of written) o.onPart?.(p.filename);

  const keyHex = key.toString('hex');
  const ivHex = iv.toString('hex');
  const manifest: Manifest = {
    version: '2007-10-10',
    bundler: toolBundler(),
    architecture: o.arch,
    blockDeviceMappings: o.blockDeviceMappings ?? [],
    kernelId: o.kernelId,
    ramdiskId: o.ramdiskId,
    productCodes: o.productCodes ?? [],
    name,
    user: o.user,
    type: 'machine',
    kernelName: o.kernelName,
    ancestry: o.ancestry ?? [],
    digest: tap.digest(),
    size: source.size,
    bundledSize: written.reduce((n, p) => n + p.size, 0),
    ec2EncryptedKey: encryptForCertificate(ec2Cert, keyHex),
    userEncryptedKey: encryptForCertificate(userCert, keyHex),
    ec2EncryptedIv: encryptForCertificate(ec2Cert, ivHex),
    userEncryptedIv: encryptForCertificate(userCert, ivHex),
    parts: written.map((p) => ({ filename: p.filename, digest: p.digest })),
  };
  const xml = buildManifestXml(manifest, signHex(userKey, buildSignedText(manifest)));
  const manifestPath = join(o.destination, `${name}.manifest.xml`);
  await writeFileAtomically(manifestPath, xml);
  return { manifestPath, manifest, partPaths: written.map((p) => p.path) };
}
