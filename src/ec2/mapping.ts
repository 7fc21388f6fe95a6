import type { DescribeImagesCommandInput, Image } from '@aws-sdk/client-ec2';
import { ec2Sdk } from './sdk.js';
import { ToolError } from '../errors.js';
import type { Ec2ClientFactory } from './client.js';
import { ec2ErrorLine } from './errors.js';
import { describeAllImages } from './images.js';

const { DescribeRegionsCommand } = ec2Sdk;

/** The fields of an image that the mapping compares. */
export interface ImageInfo { imageId: string; ownerId: string; imageType: string; location: string; region: string }

export class MappingError extends ToolError {}

/** What was asked and what came out of the kernel/ramdisk mapping. */
export interface MappingRequest {
  clients: Ec2ClientFactory;
  targetRegion: string;
  /** The ids in the manifest being migrated. */
  manifestKernelId?: string;
  manifestRamdiskId?: string;
  /** --kernel / --ramdisk: they win over the mapping. */
  kernelId?: string;
  ramdiskId?: string;
  /** Debug lines (requests made, images found). */
  debug?: (line: string) => void;
}
export interface MappingResult { kernelId?: string; ramdiskId?: string; missingInTarget: string[] }

/** The S3 key of an image location: the location without its leading bucket (the buckets differ by region). */
export function locationKey(location: string): string {
  return location.replace(/^\/*[^/]+\//, '');
}

function matchKey(i: ImageInfo): string {
  return JSON.stringify([i.ownerId, i.imageType, locationKey(i.location)]);
}

function toInfo(img: Image, region: string): ImageInfo | undefined {
  if (!img.ImageId) return undefined;
  return { imageId: img.ImageId, ownerId: img.OwnerId ?? '', imageType: img.ImageType ?? '', location: img.ImageLocation ?? '', region };
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string; Code?: string })?.name ?? '';
  return /^InvalidAMIID\./.test(name);
}

/**
 * Kernel and ramdisk ids for the target region, as the original ec2-migrate-manifest finds them: the regions from
 * DescribeRegions; the manifest's ids from DescribeImages in the regions in turn; then DescribeImages by the same owners in
 * the target region, matched on owner, image type and image location without its bucket. Explicit ids win; ids that
 * the target region does not list come back in missingInTarget (the caller warns).
 */
export async function mapKernelAndRamdisk(req: MappingRequest): Promise<MappingResult> {
  const { clients, targetRegion } = req;
  const debug = req.debug ?? (() => {});
  let kernelId = req.kernelId;
  let ramdiskId = req.ramdiskId;
  // Nothing to map, nothing to ask EC2 (as the original).
  if (!req.manifestKernelId && !req.manifestRamdiskId) return { kernelId, ramdiskId, missingInTarget: [] };

  const regions = await describeRegions(clients, targetRegion);
  debug(`EC2 regions: ${regions.join(', ')}`);
  if (!regions.includes(targetRegion)) {
    throw new MappingError(`Invalid region: ${targetRegion} is not one of the regions EC2 lists (${regions.join(', ')}); check --region.`);
  }

  const wanted: Array<{ what: string; id: string }> = [];
  if (req.manifestKernelId && !kernelId) wanted.push({ what: 'kernel', id: req.manifestKernelId });
  if (req.manifestRamdiskId && !ramdiskId) wanted.push({ what: 'ramdisk', id: req.manifestRamdiskId });

  let candidates: ImageInfo[] | undefined;
  if (wanted.length > 0) {
    const sources = await findSourceImages(clients, regions, wanted.map((w) => w.id), debug);
    for (const w of wanted) {
      if (!sources.has(w.id)) {
        throw new MappingError(`Cannot map the ${w.what} '${w.id}': no EC2 region lists it; give --${w.what} or use --no-mapping.`);
      }
    }
    const owners = [...new Set([...sources.values()].map((s) => s.ownerId))];
    candidates = await describeImages(clients, targetRegion, { Owners: owners }, debug);
    debug(`${candidates.length} image(s) of owner(s) ${owners.join(', ')} in ${targetRegion}`);
    const byKey = new Map<string, ImageInfo>();
    for (const c of candidates) if (!byKey.has(matchKey(c))) byKey.set(matchKey(c), c);
    for (const w of wanted) {
      const src = sources.get(w.id)!;
      const target = byKey.get(matchKey(src));
      if (!target) {
        throw new MappingError(`Mapping for '${w.id}' not found: no ${src.imageType || w.what} of owner ${src.ownerId} at '${locationKey(src.location)}' in ${targetRegion}; give --${w.what} or use --no-mapping.`);
      }
      debug(`${w.id} (${src.region}) -> ${target.imageId} (${targetRegion})`);
      if (w.what === 'kernel') kernelId = target.imageId;
      else ramdiskId = target.imageId;
    }
  }

  const known = new Set((candidates ?? []).map((c) => c.imageId));
  const check = [kernelId, ramdiskId].filter((id): id is string => Boolean(id) && !known.has(id!));
  const missingInTarget = check.length ? await findMissing(clients, targetRegion, check, debug) : [];
  return { kernelId, ramdiskId, missingInTarget };
}

async function describeRegions(clients: Ec2ClientFactory, via: string): Promise<string[]> {
  try {
    const out = await clients(via).send(new DescribeRegionsCommand({}));
    return (out.Regions ?? []).map((r) => r.RegionName).filter((n): n is string => Boolean(n));
  } catch (err) {
    throw new MappingError(`Could not list the EC2 regions (DescribeRegions in ${via}): ${ec2ErrorLine(err)}`, { cause: err });
  }
}

/** DescribeImages, all pages; an unknown image id gives an empty list, as if the region did not have it. */
async function describeImages(clients: Ec2ClientFactory, region: string, input: DescribeImagesCommandInput, debug: (l: string) => void): Promise<ImageInfo[]> {
  try {
    return (await describeAllImages(clients(region), input)).map((img) => toInfo(img, region)).filter((i): i is ImageInfo => i !== undefined);
  } catch (err) {
    if (isNotFound(err) && input.ImageIds?.length) {
      debug(`${region}: ${ec2ErrorLine(err)}`);
      if (input.ImageIds.length === 1) return [];
      // EC2 fails the whole call when one id is unknown: ask for each alone.
      const each = await Promise.all(input.ImageIds.map((id) => describeImages(clients, region, { ImageIds: [id] }, debug)));
      return each.flat();
    }
    const what = input.ImageIds ? `of ${input.ImageIds.join(', ')}` : `by owner ${(input.Owners ?? []).join(', ')}`;
    throw new MappingError(`DescribeImages ${what} in ${region} failed: ${ec2ErrorLine(err)}`, { cause: err });
  }
}

/** The images of the ids, looking in the regions in order until all are found. */
async function findSourceImages(clients: Ec2ClientFactory, regions: string[], ids: string[], debug: (l: string) => void): Promise<Map<string, ImageInfo>> {
  const found = new Map<string, ImageInfo>();
  for (const region of regions) {
    const left = ids.filter((id) => !found.has(id));
    if (left.length === 0) break;
    for (const info of await describeImages(clients, region, { ImageIds: left }, debug)) {
      if (left.includes(info.imageId) && !found.has(info.imageId)) found.set(info.imageId, info);
    }
    debug(`${region}: found ${[...found.values()].filter((f) => f.region === region).map((f) => f.imageId).join(', ') || 'none'}`);
  }
  return found;
}

async function findMissing(clients: Ec2ClientFactory, region: string, ids: string[], debug: (l: string) => void): Promise<string[]> {
  const present = new Set((await describeImages(clients, region, { ImageIds: ids }, debug)).map((i) => i.imageId));
  return ids.filter((id) => !present.has(id));
}
