import { buildImage, type BuildImageOptions, type BuildImageResult } from '../volume/build-image.js';
import { bundleImage, type BundleOptions, type BundleResult } from './bundle-image.js';

export interface BundleVolumeOptions extends BuildImageOptions {
  /** How to bundle the image (leave out to make the image only): its store, keys and launch fields. */
  bundle?: Omit<BundleOptions, 'image' | 'prefix' | 'signal'>;
  /** Called once the image is made, before it is bundled. */
  onImage?: (image: BuildImageResult) => void;
}

/**
 * ec2-bundle-vol as one operation: a bootable disk image of a mounted volume (selection, staging, partition table,
 * filesystem, boot code), then that image bundled into a part store. The image file is kept, as the original does.
 */
export async function bundleVolume(o: BundleVolumeOptions): Promise<{ image: BuildImageResult; bundle?: BundleResult }> {
  const image = await buildImage(o);
  o.onImage?.(image);
  if (!o.bundle) return { image };
  const bundle = await bundleImage({ ...o.bundle, image: image.imagePath, prefix: o.prefix, signal: o.signal });
  return { image, bundle };
}
