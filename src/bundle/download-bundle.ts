import { join } from 'node:path';
import { ToolError } from '../errors.js';
import type { EventHandler } from '../events.js';
import { decryptLegacyManifest, isLegacyEncryptedManifest } from '../crypto/legacy-manifest.js';
import { loadPrivateKey } from '../crypto/keys.js';
import { runPool } from '../s3/pool.js';
import { DirectoryStore } from '../store/directory-store.js';
import { expectedPartSizes, readVerifiedPart, type PartStore } from '../store/part-store.js';
import { checkManifest } from './manifest-file.js';

export interface DownloadOptions {
  /** Where the bundle is (an S3Store). */
  source: PartStore;
  /** The manifest's name beside the parts, e.g. image.manifest.xml. */
  manifestName: string;
  /** The local directory written into; it must exist. */
  directory: string;
  /** Only for the original's legacy encrypted manifests. */
  privateKeyPath?: string;
  /** Parts transferred at once (default 4). */
  concurrency?: number;
  onEvent?: EventHandler;
  /** Stops the work: nothing is left in the directory, and the promise rejects. */
  signal?: AbortSignal;
}

/**
 * Downloads a bundle: the manifest (decrypting a legacy one), then the parts concurrently, each bounded by the size
 * the manifest allows and verified before it is written; every file under a temporary name, the manifest committed
 * last, so a failed download leaves nothing behind.
 */
export async function downloadBundle(o: DownloadOptions): Promise<{ manifestPath: string; parts: string[] }> {
  const target = new DirectoryStore(o.directory, { signal: o.signal });
  const manifestPath = target.pathOf(o.manifestName);
  const source = `${o.source.location}${o.manifestName}`;
  o.onEvent?.({ type: 'step', step: 'downloading-manifest', name: o.manifestName });
  let data = await o.source.readManifest(o.manifestName);
  if (isLegacyEncryptedManifest(data)) {
    if (!o.privateKeyPath) throw new ToolError(`manifest ${source} is encrypted (legacy format): pass the private key with -k/--privatekey`);
    o.onEvent?.({ type: 'step', step: 'decrypting-manifest' });
    data = Buffer.from(decryptLegacyManifest(data, loadPrivateKey(o.privateKeyPath), source));
  }
  const manifest = checkManifest(data, source);
  const sizes = expectedPartSizes(manifest, source);
  const names = manifest.parts.map((p) => p.filename);

  const writer = target.createWriter({ names });
  const total = manifest.bundledSize;
  let done = 0;
  let partsDone = 0;
  o.onEvent?.({ type: 'progress', bytes: 0, totalBytes: total, parts: 0, totalParts: names.length });
  try {
    await runPool(manifest.parts, o.concurrency ?? 4, async (part, index) => {
      o.onEvent?.({ type: 'step', step: 'downloading-part', name: part.filename });
      const progress = (n: number) => { done += n; o.onEvent?.({ type: 'progress', bytes: done, totalBytes: total, parts: partsDone, totalParts: names.length }); };
      const { data: bytes, sums } = await readVerifiedPart(o.source, part, sizes[index]!, progress);
      await writer.putPart(index, bytes, sums);
      partsDone++;
      o.onEvent?.({ type: 'part', action: 'downloaded', name: part.filename, size: bytes.length, sha1: sums.sha1 });
    });
    o.signal?.throwIfAborted();
    await writer.commit(names, { name: o.manifestName, data });
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return { manifestPath, parts: names.map((n) => join(o.directory, n)) };
}
