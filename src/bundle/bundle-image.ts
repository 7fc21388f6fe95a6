import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { assertKeyMatchesCertificate, loadCertificate, loadPrivateKey, signHex } from '../crypto/keys.js';
import { wrapBundleKey } from '../crypto/key-envelope.js';
import { buildManifestXml, buildSignedText, type LaunchFields, type Manifest } from '../format/manifest.js';
import { PLAIN_FILE_NAME_RULE, isPlainFileName, partCount, partName } from '../format/part-name.js';
import { UsageError } from '../errors.js';
import type { EventHandler } from '../events.js';
import { PartSealer } from '../store/part-sealer.js';
import type { PartStore } from '../store/part-store.js';
import { StagedFiles } from '../stream/atomic-write.js';
import { DigestTap } from '../stream/digest-tap.js';
import { createParallelGzip } from '../stream/gzip-parallel.js';
import { BufferPool } from '../stream/buffer-pool.js';
import { TAR_CHUNK, createTarPack, describeImage, tarStreamLength } from '../stream/tar-pack.js';
import { toolBundler } from '../version.js';

export { DEFAULT_GZIP_LEVEL } from '../stream/gzip-parallel.js';

export interface BundleOptions extends Partial<LaunchFields> {
  /** The image file. */
  image: string;
  /** The bundle's name (default: the image's file name). */
  prefix?: string;
  /** Where the parts and the manifest go: a DirectoryStore or an S3Store. */
  store: PartStore;
  /** The account number, 12 digits. */
  user: string;
  arch: string;
  userCertPath: string;
  userKeyPath: string;
  ec2CertPath: string;
  /** Parts waiting for the store at once (default 1; more for a remote store). */
  partsInFlight?: number;
  /** On failure, leave the parts a remote store already holds in place (default: they are deleted). */
  keepPartial?: boolean;
  /**
   * A directory that also gets a copy of the manifest (for a remote store): staged before the manifest goes to the
   * store and given its name after, so a failure leaves it nowhere.
   */
  manifestCopyDir?: string;
  onEvent?: EventHandler;
  /** Stops the work: nothing is left in the store, and the promise rejects. */
  signal?: AbortSignal;
  /** gzip level, 0 (stored) to 9; default DEFAULT_GZIP_LEVEL. */
  compressionLevel?: number;
  /** Compression threads; default one per core. */
  threads?: number;
}

/**
 * The bundle's name: the prefix, else the image's file name. Parts and the manifest are named after it, so it must
 * be a plain file name by the rule every reader applies (UsageError otherwise).
 */
export function bundleName(image: string, prefix?: string): string {
  const name = prefix ?? basename(image);
  if (!isPlainFileName(name)) throw new UsageError(`the bundle name '${name}' is not a plain file name (${PLAIN_FILE_NAME_RULE})`);
  return name;
}

export interface BundleResult {
  manifestName: string;
  manifest: Manifest;
  /** The manifest file's exact text. */
  xml: string;
}

/** The most bytes gzip and AES can make of `n` input bytes (stored blocks, flush markers, header, padding). */
function maxBundledSize(n: number): number {
  return n + Math.ceil(n / 4096) + Math.ceil(n / 16384) + 64 * Math.ceil(n / (1 << 20)) + 1024;
}

/**
 * Bundles an image in one pass: tar → SHA-1 → gzip → AES-128-CBC → 10 MiB parts (SHA-1 each) into the store, then
 * the signed manifest, last. Nothing is left under a final name unless the whole bundle was written.
 */
export async function bundleImage(o: BundleOptions): Promise<BundleResult> {
  const userKey = loadPrivateKey(o.userKeyPath);
  const userCert = loadCertificate(o.userCertPath);
  assertKeyMatchesCertificate(userKey, userCert, o.userKeyPath, o.userCertPath);
  const ec2Cert = loadCertificate(o.ec2CertPath);

  const name = bundleName(o.image, o.prefix);
  const source = await describeImage(o.image, name);
  const key = randomBytes(16);
  const iv = randomBytes(16);

  const total = source.sparseMap ? source.sparseMap.reduce((n, r) => n + r.length, 0) : source.size;
  const tap = new DigestTap(o.onEvent && ((n) => o.onEvent!({ type: 'progress', bytes: Math.min(n, total), totalBytes: total })));
  const writer = o.store.createWriter({ prefix: name, maxParts: partCount(maxBundledSize(tarStreamLength(source))) });
  const sealer = new PartSealer(writer, { key, iv, inFlight: o.partsInFlight ?? 1 });
  const copy = o.manifestCopyDir === undefined ? undefined : new StagedFiles({ signal: o.signal });
  try {
    // The tar's read buffers go to the deflate workers as they are (the tap before the gzip stage only hashes them)
    // and come back to the pool from there.
    const pool = new BufferPool(TAR_CHUNK, 4);
    const gzip = createParallelGzip({ level: o.compressionLevel, workers: o.threads, release: (b) => pool.release(b), adopt: true });
    await pipeline(createTarPack(source, { pool }), tap, gzip, sealer, { signal: o.signal });
    const names = sealer.parts.map((_, i) => partName(name, i, sealer.parts.length));
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
      bundledSize: sealer.parts.reduce((n, p) => n + p.size, 0),
      ...wrapBundleKey(key, iv, userCert, ec2Cert),
      parts: sealer.parts.map((p, i) => ({ filename: names[i]!, digest: p.sha1 })),
    };
    const xml = buildManifestXml(manifest, signHex(userKey, buildSignedText(manifest)));
    const manifestName = `${name}.manifest.xml`;
    o.signal?.throwIfAborted();
    const data = Buffer.from(xml);
    if (copy) await copy.write(join(o.manifestCopyDir!, manifestName), data);
    await writer.commit(names, { name: manifestName, data });
    await copy?.commit().catch((err: Error) => {
      err.message += ` (the bundle itself is complete in ${o.store.location})`;
      throw err;
    });
    sealer.parts.forEach((p, i) => o.onEvent?.({ type: 'part', action: 'created', name: names[i]!, size: p.size, sha1: p.sha1 }));
    return { manifestName, manifest, xml };
  } catch (err) {
    // Failed before the pipeline took it (a bad option): its worker ends, and no part is on its way to the writer.
    if (!sealer.destroyed) await new Promise((resolve) => sealer.destroy().once('close', resolve));
    await copy?.abort();
    const report = await writer.abort({ keep: o.keepPartial });
    if (report) o.onEvent?.({ type: 'partial', action: report.kept ? 'kept' : 'removed', parts: report.parts, location: report.location, failed: report.failed });
    throw err;
  }
}
