// An S3-backed (instance-store) AMI's bundle becomes an EBS snapshot, or the contents of an attached volume, and then
// an EBS-backed AMI: the bundle is streamed (parts → decrypt → gunzip → tar → image) into an EBS snapshot through the
// EBS direct APIs or onto a device, /etc/fstab loses its instance-store entries on the way, and RegisterImage maps
// the snapshot as the root device. What AWS documents as fifteen manual steps, in one operation.
import { randomBytes } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EC2Client, RegisterImageCommandInput } from '@aws-sdk/client-ec2';
import type { EBSClient } from '@aws-sdk/client-ebs';
import { AmiToolsError, InterruptedError, ToolError, errorMessage } from '../errors.js';
import { ec2Error } from '../ec2/errors.js';
import { EbsSnapshotSink, snapshotSizeGiB, type SnapshotControl } from '../ebs/snapshot-sink.js';
import type { EventHandler } from '../events.js';
import { DETECT_BYTES, detectVirtualization, type Detection, type VirtualizationType } from '../format/disk-detect.js';
import type { Manifest } from '../format/manifest.js';
import { ROOT_SEARCH_BYTES } from '../format/partition-table.js';
import type { PartStore } from '../store/part-store.js';
import { FileImageSink, checkBlockDevice, openImageSink, type ImageAttributes, type ImageSink } from '../stream/image-sink.js';
import { fixImageFstab, type FstabOutcome } from '../volume/image-fstab.js';
import { loadManifest, type ManifestSource } from './manifest-file.js';
import { checkRegistration, registerImageCommandLine } from './register.js';
import { unbundle } from './unbundle.js';
import { detectBundleVirtualization } from './virtualization.js';

/** Write a new EBS snapshot with the EBS direct APIs. */
export interface SnapshotTarget {
  kind: 'snapshot';
  /** The EBS client for the region (its retry policy and connection pool fit `concurrency`). */
  ebs: EBSClient;
  /** At least this many GiB (default: the image's size rounded up). */
  sizeGiB?: number;
  encrypted?: boolean;
  kmsKeyArn?: string;
  /** PutSnapshotBlock requests in flight (default 32). */
  concurrency?: number;
  /** After a failure, leave the incomplete snapshot instead of deleting it. */
  keepPartial?: boolean;
}

/** Write the image onto a block device (or a regular file); with volumeId, then snapshot that volume. */
export interface DeviceTarget {
  kind: 'device';
  path: string;
  /** The device reads as zeros (a new EBS volume): the image's zero runs are not written. */
  zeroed?: boolean;
  volumeId?: string;
}

export interface RegisterEbsOptions {
  name: string;
  description?: string;
  /** Default gp3. */
  volumeType?: string;
  /** Default /dev/xvda for hvm, /dev/sda1 for paravirtual. */
  rootDeviceName?: string;
  /** Default: detected from the image's first sectors. */
  virtualizationType?: VirtualizationType;
  enaSupport?: boolean;
}

export interface ConvertToEbsOptions {
  manifest: ManifestSource;
  store: PartStore;
  privateKeyPath: string;
  certPath?: string;
  /** Parts read ahead (S3). */
  prefetch?: number;
  target: SnapshotTarget | DeviceTarget;
  /** Remove the instance-store entries from /etc/fstab (default true). */
  fixFstab?: boolean;
  /** The snapshot's description and tags (StartSnapshot, or CreateSnapshot with a volume). */
  description?: string;
  tags?: { Key: string; Value: string }[];
  register?: RegisterEbsOptions;
  /**
   * EC2 (DescribeSnapshots, DeleteSnapshot, CreateSnapshot, RegisterImage) and its region: an Ec2ClientFactory, or
   * one that loads the SDK when first called. It is called only once EC2 is needed, after the image was streamed
   * (the EC2 SDK takes ~70 MB of memory: loading it later keeps it off the streaming phase's peak).
   */
  ec2: (region: string) => EC2Client | Promise<EC2Client>;
  region: string;
  /** Read and plan only: no snapshot, nothing on the device, no mutating call. */
  dryRun?: boolean;
  /** Where the staging file goes when one is needed (default: the system's temporary directory). */
  stagingDir?: string;
  onEvent?: EventHandler;
  signal?: AbortSignal;
}

export interface ConvertToEbsResult {
  imageSize: number;
  /** The new snapshot's size (a snapshot target), in GiB. */
  snapshotSizeGiB?: number;
  snapshotId?: string;
  imageId?: string;
  virtualization: Detection;
  /** What happened to /etc/fstab: undefined when it was left as it is (fixFstab false). */
  fstab?: FstabOutcome;
  /** The RegisterImage request sent (or, with dryRun, that would be: the snapshot id is then a placeholder). */
  registerRequest?: RegisterImageCommandInput;
  /** Bytes the staging file took on local disk at most (0: none was used). */
  stagedBytes: number;
  dryRun: boolean;
}

/** The placeholder for the snapshot a dry run would create. */
export const DRY_RUN_SNAPSHOT = 'snap-(to be created)';
const COPY_CHUNK = 1 << 20;

/** Keeps the image's first ROOT_SEARCH_BYTES as they go past, for the virtualization type and the partition table. */
class HeadTap implements ImageSink {
  readonly head = Buffer.alloc(ROOT_SEARCH_BYTES);
  constructor(private readonly inner: ImageSink) {}
  get name(): string { return this.inner.name; }
  get revocable(): boolean { return this.inner.revocable; }
  write(data: Buffer, offset: number): Promise<void> {
    if (offset < this.head.length) data.copy(this.head, offset, 0, Math.min(data.length, this.head.length - offset));
    return this.inner.write(data, offset);
  }
  finish(size: number, attrs?: ImageAttributes): Promise<void> { return this.inner.finish(size, attrs); }
  abort(): Promise<void> { return this.inner.abort(); }
}

/** The devices the manifest maps to ephemeral and swap volumes, as /dev paths (their fstab entries go too). */
function instanceStoreDevices(manifest: Manifest): string[] {
  return manifest.blockDeviceMappings
    .filter((m) => /^(ephemeral\d+|swap)$/.test(m.virtual))
    .map((m) => (m.device.startsWith('/dev/') ? m.device : `/dev/${m.device}`));
}

/** The RegisterImage request for an EBS-backed AMI whose root device is the snapshot. */
export function ebsRegisterImageInput(o: {
  manifest: Pick<Manifest, 'architecture' | 'kernelId' | 'ramdiskId'>; snapshotId: string; register: RegisterEbsOptions; detected?: VirtualizationType;
}): RegisterImageCommandInput {
  const r = o.register;
  const type = r.virtualizationType ?? o.detected;
  const root = r.rootDeviceName ?? (type === 'hvm' ? '/dev/xvda' : '/dev/sda1');
  // A kernel and ramdisk only boot a paravirtual image (PV-GRUB); EC2 refuses them with hvm.
  const pv = type !== 'hvm';
  return {
    Name: r.name,
    ...(r.description !== undefined ? { Description: r.description } : {}),
    Architecture: o.manifest.architecture as RegisterImageCommandInput['Architecture'],
    RootDeviceName: root,
    BlockDeviceMappings: [{ DeviceName: root, Ebs: { SnapshotId: o.snapshotId, DeleteOnTermination: true, VolumeType: (r.volumeType ?? 'gp3') as 'gp3' } }],
    ...(type ? { VirtualizationType: type } : {}),
    ...(pv && o.manifest.kernelId ? { KernelId: o.manifest.kernelId } : {}),
    ...(pv && o.manifest.ramdiskId ? { RamdiskId: o.manifest.ramdiskId } : {}),
    ...(r.enaSupport ? { EnaSupport: true } : {}),
  };
}

/**
 * Converts a bundle. With a snapshot target and the fstab fix wanted, the image is staged in a sparse file first
 * (its data only: zero blocks stay holes), edited there, then sent; without the fix it goes straight from the bundle
 * to the snapshot and nothing touches local disk. With a device, the image is written onto it and edited in place.
 */
export async function convertToEbs(o: ConvertToEbsOptions): Promise<ConvertToEbsResult> {
  const emit = (step: Parameters<EventHandler>[0] & { type: 'step' }) => o.onEvent?.(step);
  const { manifest } = await loadManifest(o.manifest, o.store, o.certPath);
  const fixFstab = o.fixFstab ?? true;
  const mapped = instanceStoreDevices(manifest);
  const target = o.target;
  const sizeGiB = target.kind === 'snapshot' ? snapshotSizeGiB(manifest.size, target.sizeGiB) : undefined;
  if (o.register) checkRegistration(o.register.name, o.register.description);
  const result: ConvertToEbsResult = { imageSize: manifest.size, snapshotSizeGiB: sizeGiB, virtualization: { reason: '' }, stagedBytes: 0, dryRun: Boolean(o.dryRun) };
  const ec2 = async () => ({ client: await o.ec2(o.region), ...(await import('../ec2/snapshots.js')), ...(await import('../ec2/images.js')) });
  const control: SnapshotControl = {
    waitUntilCompleted: async (id, onProgress) => { const e = await ec2(); await e.waitUntilCompleted(e.client, id, onProgress, o.signal); },
    deleteSnapshot: async (id) => { const e = await ec2(); await e.deleteSnapshot(e.client, id); },
  };
  const stagingPath = join(o.stagingDir ?? tmpdir(), `.amitools-ebs-${randomBytes(6).toString('hex')}.img`);
  const unbundleInto = async (open: () => Promise<ImageSink>): Promise<HeadTap> => {
    let tap: HeadTap | undefined;
    emit({ type: 'step', step: 'unbundling' });
    await unbundle({
      manifest: o.manifest, store: o.store, privateKeyPath: o.privateKeyPath, certPath: o.certPath, prefetch: o.prefetch,
      sink: async () => (tap = new HeadTap(await open())),
      onEvent: o.onEvent, signal: o.signal,
    });
    return tap!;
  };

  if (o.dryRun) {
    if (target.kind === 'device') {
      // What opening the device for the image would refuse, without opening it for writing.
      const st = await stat(target.path).catch(() => undefined);
      if (st?.isBlockDevice()) await checkBlockDevice(target.path, st.rdev, manifest.size);
    }
    if (fixFstab) {
      // The plan needs the image's /etc/fstab: read through a staging file, removed at once (the type comes with it).
      try {
        const tap = await unbundleInto(() => FileImageSink.create(stagingPath, { signal: o.signal }));
        result.virtualization = detectVirtualization(tap.head.subarray(0, DETECT_BYTES));
        result.stagedBytes = await allocatedBytes(stagingPath);
        result.fstab = await fixImageFstab(stagingPath, { mapped, dryRun: true });
      } finally {
        await rm(stagingPath, { force: true });
      }
    } else {
      result.virtualization = await detectBundleVirtualization({ manifest, source: o.store, privateKeyPath: o.privateKeyPath });
    }
    if (o.register && (target.kind === 'snapshot' || target.volumeId)) {
      result.registerRequest = ebsRegisterImageInput({ manifest, snapshotId: DRY_RUN_SNAPSHOT, register: o.register, detected: result.virtualization.type });
    }
    return result;
  }

  if (target.kind === 'snapshot') {
    const sink = new EbsSnapshotSink({
      client: target.ebs, control, imageSize: manifest.size, volumeSizeGiB: sizeGiB!, description: o.description, tags: o.tags,
      encrypted: target.encrypted, kmsKeyArn: target.kmsKeyArn, concurrency: target.concurrency ?? 32, keepPartial: target.keepPartial,
      onProgress: fixFstab ? (bytes) => o.onEvent?.({ type: 'progress', bytes, totalBytes: manifest.size }) : undefined,
      onWaitProgress: (percent) => emit({ type: 'step', step: 'waiting-for-snapshot', name: `${percent}%` }),
      signal: o.signal,
    });
    const startSnapshot = async () => {
      const id = await sink.start();
      result.snapshotId = id;
      emit({ type: 'step', step: 'snapshot-started', name: id });
    };
    try {
      if (!fixFstab) {
        // Straight from the bundle: CompleteSnapshot only once the tar digest matched (the sink's finish).
        const tap = await unbundleInto(async () => { await startSnapshot(); return sink; });
        result.virtualization = detectVirtualization(tap.head.subarray(0, DETECT_BYTES));
      } else {
        try {
          const tap = await unbundleInto(() => FileImageSink.create(stagingPath, { signal: o.signal }));
          result.virtualization = detectVirtualization(tap.head.subarray(0, DETECT_BYTES));
          result.stagedBytes = await allocatedBytes(stagingPath);
          result.fstab = await editFstab(stagingPath, mapped, emit);
          await startSnapshot();
          emit({ type: 'step', step: 'writing-snapshot', name: result.snapshotId });
          await copyFileToSink(stagingPath, sink, manifest.size, o.signal);
          await sink.finish(manifest.size);
        } finally {
          await rm(stagingPath, { force: true });
        }
      }
    } catch (err) {
      if (sink.snapshotId) {
        await sink.abort();
        throw snapshotFailure(err, sink, o.signal);
      }
      throw err;
    }
    emit({ type: 'step', step: 'snapshot-completed', name: result.snapshotId });
  } else {
    const tap = await unbundleInto(() => openImageSink(target.path, { imageSize: manifest.size, deviceZeroed: target.zeroed, signal: o.signal }));
    result.virtualization = detectVirtualization(tap.head.subarray(0, DETECT_BYTES));
    if (fixFstab) result.fstab = await editFstab(target.path, mapped, emit);
    if (target.volumeId) {
      emit({ type: 'step', step: 'creating-snapshot', name: target.volumeId });
      const e = await ec2();
      const id = await e.createSnapshot(e.client, { volumeId: target.volumeId, description: o.description, tags: o.tags });
      result.snapshotId = id;
      emit({ type: 'step', step: 'snapshot-started', name: id });
      await e.waitUntilCompleted(e.client, id, (percent) => emit({ type: 'step', step: 'waiting-for-snapshot', name: `${percent}%` }), o.signal);
      emit({ type: 'step', step: 'snapshot-completed', name: id });
    }
  }

  if (o.register && result.snapshotId) {
    const request = ebsRegisterImageInput({ manifest, snapshotId: result.snapshotId, register: o.register, detected: result.virtualization.type });
    result.registerRequest = request;
    emit({ type: 'step', step: 'registering-image', name: o.register.name });
    try {
      const e = await ec2();
      result.imageId = await e.sendRegisterImage(e.client, request);
    } catch (err) {
      const e = ec2Error(err, `RegisterImage of ${result.snapshotId} in ${o.region} failed`, 'RegisterImage');
      throw new ToolError(`${e.message}. The snapshot ${result.snapshotId} is complete and left in place; register it with: ${registerImageCommandLine(request, o.region)}`, { code: e.code, cause: err });
    }
  }
  return result;
}

/** Edits /etc/fstab in the image, announcing each entry removed; a filesystem it cannot edit is a warning. */
async function editFstab(image: string, mapped: string[], emit: (e: Parameters<EventHandler>[0] & { type: 'step' }) => void): Promise<FstabOutcome> {
  emit({ type: 'step', step: 'editing-fstab' });
  const outcome = await fixImageFstab(image, { mapped });
  if (outcome.status === 'edited') for (const r of outcome.removed) emit({ type: 'step', step: 'fstab-entry-removed', name: r.text });
  return outcome;
}

/** The staging file into the snapshot sink, in order; the sink itself skips blocks of zeros (holes read as zeros). */
async function copyFileToSink(path: string, sink: ImageSink, size: number, signal?: AbortSignal): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(COPY_CHUNK);
    const zero = Buffer.alloc(COPY_CHUNK);
    for (let at = 0; at < size;) {
      if (signal?.aborted) throw new InterruptedError('interrupted');
      const { bytesRead } = await fh.read(buf, 0, Math.min(COPY_CHUNK, size - at), at);
      if (bytesRead === 0) throw new ToolError(`the staging file ${path} ended at byte ${at} of ${size}`, { code: 'IO_ERROR' });
      const chunk = buf.subarray(0, bytesRead);
      if (!chunk.equals(zero.subarray(0, bytesRead))) await sink.write(chunk, at);
      at += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** Bytes a file takes on disk (its allocated blocks: holes take none). */
async function allocatedBytes(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    return (await fh.stat()).blocks * 512;
  } finally {
    await fh.close();
  }
}

/** The failure, with what became of the snapshot: deleted, kept (keepPartial), or not deletable. */
function snapshotFailure(err: unknown, sink: EbsSnapshotSink, signal?: AbortSignal): Error {
  const out = sink.outcome;
  const what = !out ? '' : out.action === 'deleted' ? `the incomplete snapshot ${out.snapshotId} was deleted`
    : out.action === 'kept' ? `the incomplete snapshot ${out.snapshotId} is left in place, as asked: do not use it`
    : `the incomplete snapshot ${out.snapshotId} could not be deleted (${'reason' in out ? out.reason : ''}): delete it with aws ec2 delete-snapshot --snapshot-id ${out.snapshotId}`;
  if (signal?.aborted) return new InterruptedError(what || 'interrupted', { cause: err });
  const message = errorMessage(err).replace(/; the image written to .* is incomplete or invalid: do not use it$/, '');
  return new ToolError(what ? `${message}; ${what}` : message, { cause: err, code: err instanceof AmiToolsError ? err.code : 'FAILED' });
}
