// The public library: operations, part stores, codecs, errors and event types. The commands in src/cli/ are thin
// shells over these; nothing here reads flags, prompts, prints or exits.
export { AmiToolsError, ToolError, UsageError, InterruptedError, invalidOption, errorMessage, type ErrorCode, type OptionAt } from './errors.js';
export { TOOL_NAME, TOOL_VERSION, toolBundler } from './version.js';

export { bundleImage, type BundleOptions, type BundleResult } from './bundle/bundle-image.js';
export { bundleVolume, type BundleVolumeOptions } from './bundle/bundle-volume.js';
export { unbundle, S3_PREFETCH, type UnbundleOptions } from './bundle/unbundle.js';
export { readManifest, loadManifest, checkManifest, signatureVerifies, type ManifestSource } from './bundle/manifest-file.js';
export { displayText } from './format/display.js';
export { uploadBundle, ensureBucket, type UploadOptions, type UploadResult } from './bundle/upload-bundle.js';
export { downloadBundle, type DownloadOptions } from './bundle/download-bundle.js';
export { deleteBundle, BundleRegisteredError, type DeleteOptions, type DeleteResult, type RegisteredImagesCheck } from './bundle/delete-bundle.js';
export {
  registerImage, registerImageInput, registerImageCommandLine, checkRegistration, launchMappings,
  type RegisterOptions, type RegisterResult,
} from './bundle/register.js';
export { detectImageFileVirtualization, detectBundleVirtualization, bundledImageHead } from './bundle/virtualization.js';
export { ec2ClientFactory, type Ec2ClientFactory, type Ec2ClientOptions } from './ec2/client.js';
export {
  convertToEbs, ebsRegisterImageInput, DRY_RUN_SNAPSHOT,
  type ConvertToEbsOptions, type ConvertToEbsResult, type SnapshotTarget, type DeviceTarget, type RegisterEbsOptions,
} from './bundle/convert-to-ebs.js';
export { EbsSnapshotSink, EBS_BLOCK, snapshotSizeGiB, type SnapshotControl, type SnapshotSinkOptions, type SnapshotOutcome } from './ebs/snapshot-sink.js';
export { ebsClient, type EbsClientOptions } from './ebs/client.js';
export { fixImageFstab, imageRoot, type FstabOutcome } from './volume/image-fstab.js';
export { planFstab, type FstabPlan, type RemovedEntry } from './format/fstab.js';
export { findRootFilesystem, filesystemType, ROOT_SEARCH_BYTES, type RootLocation } from './format/partition-table.js';

export { type PartStore, type PartWriter, type PartSums, expectedPartSizes, readVerifiedPart } from './store/part-store.js';
export { DirectoryStore } from './store/directory-store.js';
export { S3Store, ACLS, type Acl } from './store/s3-store.js';
export { createS3Target, type S3Target } from './s3/client.js';
export type { AmiToolsEvent, EventHandler, OperationStep } from './events.js';
export { migrateManifest, type MigrateOptions, type MigrateResult } from './bundle/migrate.js';

export {
  MANIFEST_VERSION, ManifestError, buildManifestXml, buildSignedText, parseManifest,
  type BlockDeviceMapping, type LaunchFields, type Manifest, type ManifestPart, type SignedManifest,
} from './format/manifest.js';
export { PART_SIZE, isPlainFileName, partCount, partName } from './format/part-name.js';
export * as tar from './format/tar-header.js';
export { firstMemberHead, type MemberHead } from './format/tar-member-head.js';
export { DETECT_BYTES, VIRTUALIZATION_TYPES, detectVirtualization, type Detection, type VirtualizationType } from './format/disk-detect.js';
export { createTarPack, describeImage, type TarSource } from './stream/tar-pack.js';
export { TarExtract, type ExtractedFile } from './stream/tar-extract.js';
export { createParallelGzip, type ParallelGzipOptions } from './stream/gzip-parallel.js';
export { loadCertificate, loadPrivateKey, signHex, verifyHex } from './crypto/keys.js';
export {
  FileImageSink, DeviceImageSink, StreamImageSink, openBlockDevice, openImageSink,
  type ImageSink, type ImageAttributes, type OpenImageSinkOptions,
} from './stream/image-sink.js';
export { BlockWriter, fileRangeWriter, type RangeWriter, type BlockWriterOptions } from './stream/block-writer.js';
export { blockDeviceSize, blockDeviceUsers, majorMinor } from './volume/block-device.js';
