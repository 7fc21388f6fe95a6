import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../format/manifest.js';
import { partLength } from '../format/part-name.js';

/** A bundle part in `--output json`: its name, its size on disk, its SHA-1 (the manifest's, which it was checked against). */
export interface PartDocument { name: string; size: number | null; sha1: string }

/**
 * What `--output json` says about a bundle: its manifest's fields, with the parts' sizes read from `partsDir`, or
 * without it (parts read from S3, each checked at its size) the sizes the manifest gives them.
 */
export async function bundleDocument(manifest: Manifest, partsDir?: string): Promise<Record<string, unknown>> {
  const parts: PartDocument[] = await Promise.all(manifest.parts.map(async (p, i) => ({
    name: p.filename,
    size: partsDir === undefined ? partLength(manifest.bundledSize, i) : await stat(join(partsDir, p.filename)).then((s) => s.size, () => null),
    sha1: p.digest,
  })));
  return {
    name: manifest.name,
    architecture: manifest.architecture,
    imageSize: manifest.size,
    imageSha1: manifest.digest,
    bundledSize: manifest.bundledSize,
    parts,
    ...(manifest.kernelId ? { kernelId: manifest.kernelId } : {}),
    ...(manifest.ramdiskId ? { ramdiskId: manifest.ramdiskId } : {}),
    ...(manifest.productCodes.length ? { productCodes: manifest.productCodes } : {}),
    ...(manifest.ancestry.length ? { ancestorAmiIds: manifest.ancestry } : {}),
    ...(manifest.blockDeviceMappings.length ? { blockDeviceMappings: manifest.blockDeviceMappings } : {}),
  };
}
