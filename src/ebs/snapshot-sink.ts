// An image written straight into a new EBS snapshot with the EBS direct APIs: StartSnapshot, then PutSnapshotBlock
// for every 512 KiB block that holds data (each with its SHA-256), then CompleteSnapshot with the count of blocks
// written and the LINEAR aggregate of their digests. No volume, no instance. Blocks are sent concurrently from a fixed
// pool of buffers, so memory is concurrency × 512 KiB whatever the image's size.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { getMaxListeners, setMaxListeners } from 'node:events';
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand, type EBSClient } from '@aws-sdk/client-ebs';
import { errorMessage, ToolError } from '../errors.js';
import { ebsError } from './errors.js';

/** The EBS direct APIs' only block size. */
export const EBS_BLOCK = 512 * 1024;
const GiB = 1024 ** 3;
const ZERO_BLOCK = Buffer.alloc(EBS_BLOCK);

/** The snapshot's size in GiB: the image rounded up to whole GiB, or `atLeast` if that is larger. */
export function snapshotSizeGiB(imageBytes: number, atLeast = 1): number {
  return Math.max(1, atLeast, Math.ceil(imageBytes / GiB));
}

/** What happens to the snapshot outside the EBS direct APIs (EC2 calls): waiting for it, deleting it. */
export interface SnapshotControl {
  /** Resolves when EC2 reports the snapshot `completed`; rejects when it reports `error`. */
  waitUntilCompleted(snapshotId: string, onProgress?: (percent: number) => void): Promise<void>;
  deleteSnapshot(snapshotId: string): Promise<void>;
}

export interface SnapshotSinkOptions {
  client: EBSClient;
  control: SnapshotControl;
  /** The image's size in bytes (the manifest's): the volume must hold it. */
  imageSize: number;
  volumeSizeGiB: number;
  description?: string;
  tags?: { Key: string; Value: string }[];
  encrypted?: boolean;
  kmsKeyArn?: string;
  /** PutSnapshotBlock requests in flight at once (each holds one 512 KiB buffer). */
  concurrency: number;
  /** After a failure, leave the incomplete snapshot instead of deleting it. */
  keepPartial?: boolean;
  /** Image bytes passed on so far (of imageSize), blocks written so far. */
  onProgress?: (bytes: number, blocks: number) => void;
  /** Snapshot states while waiting for `completed`. */
  onWaitProgress?: (percent: number) => void;
  signal?: AbortSignal;
}

/** What abort() did with the snapshot, for the caller's one error line. */
export type SnapshotOutcome = { snapshotId: string; action: 'deleted' | 'kept' } | { snapshotId: string; action: 'delete-failed'; reason: string };

/**
 * The image sink (stream/image-sink.ts's ImageSink, structurally: transport knows no streams) that writes an EBS
 * snapshot. start() first; then write()s, and finish() or abort().
 */
export class EbsSnapshotSink {
  readonly revocable: boolean;
  snapshotId: string | undefined;
  /** Blocks written (ChangedBlocksCount). */
  changedBlocks = 0;
  /** Set by abort() once a snapshot existed. */
  outcome: SnapshotOutcome | undefined;

  private readonly aggregate: Hash = createHash('sha256');
  private readonly free: Buffer[] = [];
  private readonly waiters: (() => void)[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private allocated = 0;
  private cur: Buffer | undefined;
  private curIndex = -1;
  private lastIndex = -1;
  private failure: unknown;
  private passed = 0;
  private done = false;
  private readonly maxBlocks: number;

  constructor(private readonly o: SnapshotSinkOptions) {
    this.revocable = !o.keepPartial;
    this.maxBlocks = (o.volumeSizeGiB * GiB) / EBS_BLOCK;
    if (o.volumeSizeGiB * GiB < o.imageSize) throw new RangeError(`a ${o.volumeSizeGiB} GiB snapshot cannot hold a ${o.imageSize}-byte image`);
    // Every request in flight listens to the signal: that many listeners are expected, not a leak.
    if (o.signal) setMaxListeners(Math.max(getMaxListeners(o.signal), o.concurrency + 16), o.signal);
  }

  get name(): string {
    return this.snapshotId ? `snapshot ${this.snapshotId}` : 'a new EBS snapshot';
  }

  /** StartSnapshot: the snapshot exists (pending) from here on; its id. */
  async start(): Promise<string> {
    const o = this.o;
    try {
      const out = await o.client.send(new StartSnapshotCommand({
        VolumeSize: o.volumeSizeGiB,
        ClientToken: randomUUID(),
        ...(o.description !== undefined ? { Description: o.description } : {}),
        ...(o.tags?.length ? { Tags: o.tags } : {}),
        ...(o.encrypted ? { Encrypted: true } : {}),
        ...(o.kmsKeyArn ? { KmsKeyArn: o.kmsKeyArn } : {}),
      }), { abortSignal: o.signal });
      if (!out.SnapshotId) throw new ToolError('StartSnapshot answered without a snapshot id', { code: 'EBS_ERROR' });
      if (out.BlockSize !== undefined && out.BlockSize !== EBS_BLOCK) {
        throw new ToolError(`StartSnapshot answered with a block size of ${out.BlockSize} bytes; only ${EBS_BLOCK} is supported`, { code: 'EBS_ERROR' });
      }
      this.snapshotId = out.SnapshotId;
      return out.SnapshotId;
    } catch (err) {
      throw ebsError(err, `StartSnapshot of a ${o.volumeSizeGiB} GiB snapshot failed`, 'StartSnapshot');
    }
  }

  async write(data: Buffer, offset: number): Promise<void> {
    this.check();
    let p = 0;
    while (p < data.length) {
      const at = offset + p;
      const index = Math.floor(at / EBS_BLOCK);
      if (this.cur && index !== this.curIndex) await this.send();
      if (!this.cur) await this.open(index);
      const within = at - index * EBS_BLOCK;
      const n = Math.min(EBS_BLOCK - within, data.length - p);
      data.copy(this.cur!, within, p, p + n);
      p += n;
      if (within + n === EBS_BLOCK) await this.send();
    }
    this.passed = Math.max(this.passed, offset + data.length);
  }

  async finish(size: number): Promise<void> {
    const o = this.o;
    if (size > o.volumeSizeGiB * GiB) throw new ToolError(`the image is ${size} bytes, more than the ${o.volumeSizeGiB} GiB snapshot`, { code: 'EBS_ERROR' });
    if (this.cur) await this.send();
    await this.drain();
    this.check();
    this.done = true;
    const id = this.snapshotId!;
    try {
      await o.client.send(new CompleteSnapshotCommand({
        SnapshotId: id, ChangedBlocksCount: this.changedBlocks,
        Checksum: this.aggregate.digest('base64'), ChecksumAlgorithm: 'SHA256', ChecksumAggregationMethod: 'LINEAR',
      }), { abortSignal: o.signal });
    } catch (err) {
      throw ebsError(err, `CompleteSnapshot of ${id} failed`, 'CompleteSnapshot');
    }
    o.onProgress?.(size, this.changedBlocks);
    await o.control.waitUntilCompleted(id, o.onWaitProgress);
  }

  async abort(): Promise<void> {
    this.done = true;
    this.failure ??= new ToolError('aborted', { code: 'INTERRUPTED' });
    await Promise.allSettled([...this.inflight]);
    const id = this.snapshotId;
    if (!id || this.outcome) return;
    if (this.o.keepPartial) {
      this.outcome = { snapshotId: id, action: 'kept' };
      return;
    }
    try {
      await this.o.control.deleteSnapshot(id);
      this.outcome = { snapshotId: id, action: 'deleted' };
    } catch (err) {
      this.outcome = { snapshotId: id, action: 'delete-failed', reason: errorMessage(err) };
    }
  }

  // ------------------------------------------------------------------------------------------------------------

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.done) throw new ToolError(`${this.name} is already finished`);
    if (!this.snapshotId) throw new ToolError('EbsSnapshotSink: start() was not called');
  }

  /** A zeroed buffer for block `index`, from the pool (waiting for a PUT to return one when all are in use). */
  private async open(index: number): Promise<void> {
    if (index >= this.maxBlocks) {
      throw new ToolError(`image data at block ${index} lies beyond the ${this.o.volumeSizeGiB} GiB snapshot`, { code: 'EBS_ERROR' });
    }
    if (index <= this.lastIndex) throw new ToolError(`image pieces out of order (block ${index} after ${this.lastIndex})`);
    let buf = this.free.pop();
    if (!buf && this.allocated < this.o.concurrency + 1) {
      buf = Buffer.allocUnsafe(EBS_BLOCK);
      this.allocated++;
    }
    while (!buf) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.check();
      buf = this.free.pop();
    }
    buf.fill(0);
    this.cur = buf;
    this.curIndex = index;
  }

  private release(buf: Buffer): void {
    this.free.push(buf);
    this.waiters.shift()?.();
  }

  /** Sends the current block unless it is all zeros (EBS reads unwritten blocks as zeros). */
  private async send(): Promise<void> {
    const buf = this.cur!;
    const index = this.curIndex;
    this.cur = undefined;
    this.lastIndex = index;
    if (buf.equals(ZERO_BLOCK)) {
      this.release(buf);
      return;
    }
    // Blocks are queued in index order, so the LINEAR aggregate is taken as they go: no list of digests is kept.
    const digest = createHash('sha256').update(buf).digest();
    this.aggregate.update(digest);
    this.changedBlocks++;
    while (this.inflight.size >= this.o.concurrency) {
      await Promise.race(this.inflight);
      this.check();
    }
    const job = this.put(index, buf, digest.toString('base64'))
      .catch((err: unknown) => { this.failure ??= err; })
      .finally(() => {
        this.inflight.delete(job);
        this.release(buf);
        if (!this.failure) this.o.onProgress?.(this.passed, this.changedBlocks);
      });
    this.inflight.add(job);
  }

  private async put(index: number, buf: Buffer, checksum: string): Promise<void> {
    const o = this.o;
    try {
      await o.client.send(new PutSnapshotBlockCommand({
        SnapshotId: this.snapshotId!, BlockIndex: index, BlockData: buf, DataLength: EBS_BLOCK,
        Checksum: checksum, ChecksumAlgorithm: 'SHA256',
        Progress: Math.min(100, Math.floor((this.passed / Math.max(1, o.imageSize)) * 100)),
      }), { abortSignal: o.signal });
    } catch (err) {
      throw ebsError(err, `PutSnapshotBlock of block ${index} of ${this.snapshotId} failed`, 'PutSnapshotBlock');
    }
  }

  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.race(this.inflight);
  }
}
