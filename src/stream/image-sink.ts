// Where an image's bytes go when it is written as one thing rather than extracted into a directory: a regular file
// (holes restored), a block device (every byte, or only the data when the device is known to read as zeros), or a
// stream such as stdout (every byte, in order). The unbundler hands the image's single tar member to a sink;
// ec2-convert-to-ebs hands it to a device or an EBS snapshot the same way.
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { ToolError } from '../errors.js';
import { ioError } from '../io-errors.js';
import { blockDeviceSize, blockDeviceUsers } from '../volume/block-device.js';
import { StagedFiles } from './atomic-write.js';
import { BlockWriter, fileRangeWriter } from './block-writer.js';

/** What a file sink may apply to the image at the end (the tar member's permission bits and time); others ignore it. */
export interface ImageAttributes {
  /** Permission bits (only 0o777 is applied). */
  mode?: number;
  /** Modification time, seconds since the epoch. */
  mtime?: number;
}

/**
 * The destination of one image. The writer calls write() with pieces in increasing offset order that never overlap;
 * a gap between pieces, and the stretch from the last piece to `size`, are zeros (holes) that the sink restores in its
 * own way: a file leaves holes, a device writes zeros unless it already reads as zeros, a stream writes zeros.
 * Then exactly one of finish() (the image is complete and verified) or abort() (it is not) is called.
 */
export interface ImageSink {
  /** For messages: a path, or "stdout". */
  readonly name: string;
  /**
   * Whether abort() takes back what was written (a file written under a temporary name) or not (a device, a stream):
   * after a failure, a non-revocable sink holds an invalid image and the caller must say so.
   */
  readonly revocable: boolean;
  /** `data` at `offset` of the image; the sink may keep `data` only until the returned promise settles. */
  write(data: Buffer, offset: number): Promise<void>;
  /** The image is complete and verified and `size` bytes long: write what is left and make it final. */
  finish(size: number, attrs?: ImageAttributes): Promise<void>;
  /** The image is not valid: remove what can be removed, release the destination. Safe to call more than once. */
  abort(): Promise<void>;
}

/**
 * A regular file: written under a temporary name beside `path` with holes restored, given its name (replacing what
 * was there) only by finish(); abort() removes it.
 */
export class FileImageSink implements ImageSink {
  readonly revocable = true;
  private constructor(readonly name: string, private readonly group: StagedFiles, private readonly fh: FileHandle, private readonly writer: BlockWriter) {}

  /** With `signal`, the temporary file is removed as soon as the signal fires. */
  static async create(path: string, o: { signal?: AbortSignal } = {}): Promise<FileImageSink> {
    const group = new StagedFiles({ signal: o.signal });
    try {
      // 0600 until finished: an image may hold a system's secrets.
      const { fh } = await group.create(path, { mode: 0o600, exactMode: true });
      return new FileImageSink(path, group, fh, new BlockWriter(fileRangeWriter(fh), { zeros: 'skip' }));
    } catch (err) {
      await group.abort();
      throw ioError(err, path, 'create');
    }
  }

  async write(data: Buffer, offset: number): Promise<void> {
    await this.writer.write(data, offset).catch((err: unknown) => { throw ioError(err, this.name, 'write'); });
  }

  /** Truncates to `size` (the trailing hole), applies the member's permission bits and time (else keeps 0600), renames. */
  async finish(size: number, attrs: ImageAttributes = {}): Promise<void> {
    try {
      await this.writer.finish();
      await this.fh.truncate(size);
      if (attrs.mode !== undefined) await this.fh.chmod(attrs.mode & 0o777);
      if (attrs.mtime !== undefined) await this.fh.utimes(Date.now() / 1000, attrs.mtime);
    } catch (err) {
      throw ioError(err, this.name, 'write');
    }
    await this.group.commit();
  }

  async abort(): Promise<void> {
    await this.writer.stop();
    await this.group.abort();
  }
}

/**
 * A block device, written in place: every byte of the image, or with `zeroed` only its data (the device must then
 * already read as zeros, e.g. a new EBS volume). Nothing past the image's length is touched. Open it with
 * openBlockDevice, which refuses a device in use or too small.
 */
export class DeviceImageSink implements ImageSink {
  readonly revocable = false;
  private readonly writer: BlockWriter;
  private closed = false;

  constructor(readonly name: string, private readonly fh: FileHandle, private readonly limit: number, zeroed: boolean) {
    this.writer = new BlockWriter(fileRangeWriter(fh), { zeros: zeroed ? 'skip' : 'write' });
  }

  async write(data: Buffer, offset: number): Promise<void> {
    if (offset + data.length > this.limit) throw new ToolError(`refusing to write past byte ${this.limit} of ${this.name}, the image's size`, { code: 'TAR_INVALID' });
    await this.writer.write(data, offset).catch((err: unknown) => { throw ioError(err, this.name, 'write'); });
  }

  /** Writes the rest (zeros up to `size`, unless zeroed) and flushes it to the device. */
  async finish(size: number): Promise<void> {
    if (size > this.limit) throw new ToolError(`refusing to write past byte ${this.limit} of ${this.name}, the image's size`, { code: 'TAR_INVALID' });
    try {
      await this.writer.finish(size);
      await this.fh.datasync();
      this.closed = true;
      await this.fh.close();
    } catch (err) {
      throw ioError(err, this.name, 'write');
    }
  }

  async abort(): Promise<void> {
    await this.writer.stop();
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }
}

/** Refuses the block device `rdev` (named `path`) if it is in use or smaller than `imageSize`; writes nothing. */
export async function checkBlockDevice(path: string, rdev: number, imageSize: number): Promise<void> {
  const users = await blockDeviceUsers(rdev);
  if (users.length) throw new ToolError(`${path} is in use (${users.join('; ')}): refusing to write an image over it; nothing was written`, { code: 'DEVICE_UNUSABLE' });
  const size = await blockDeviceSize(rdev).catch((err: unknown) => { throw ioError(err, path, 'read the size of'); });
  if (size < imageSize) {
    throw new ToolError(`${path} is ${size} bytes, smaller than the ${imageSize}-byte image: nothing was written; use a device of at least ${imageSize} bytes`, { code: 'DEVICE_UNUSABLE' });
  }
}

/**
 * Opens a block device for an image of `imageSize` bytes, refusing one that is mounted, held (device-mapper, RAID,
 * LVM) or used as swap, or smaller than the image, before anything is written. It is opened with O_EXCL, which Linux
 * refuses (EBUSY) for a device in use, and which keeps it from being mounted while the image is written.
 */
export async function openBlockDevice(path: string, o: { imageSize: number; zeroed?: boolean }): Promise<DeviceImageSink> {
  const st = await stat(path).catch((err: unknown) => { throw ioError(err, path, 'open'); });
  if (!st.isBlockDevice()) throw new ToolError(`${path} is not a block device`, { code: 'DEVICE_UNUSABLE' });
  await checkBlockDevice(path, st.rdev, o.imageSize);
  const fh = await open(path, constants.O_WRONLY | constants.O_EXCL).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EBUSY') throw new ToolError(`${path} is in use (the kernel refuses exclusive access): refusing to write an image over it; nothing was written`, { code: 'DEVICE_UNUSABLE' });
    throw ioError(err, path, 'open');
  });
  // The name could have been pointed at another device between the checks and the open.
  const now = await fh.stat();
  if (!now.isBlockDevice() || now.rdev !== st.rdev) {
    await fh.close();
    throw new ToolError(`${path} changed while it was being checked; nothing was written`, { code: 'DEVICE_UNUSABLE' });
  }
  return new DeviceImageSink(path, fh, o.imageSize, o.zeroed ?? false);
}

/**
 * A stream (stdout, a pipe, a character device): every byte in order, holes as zeros. Each write waits until the
 * stream has taken the bytes, so a slow reader slows the unbundle, not memory.
 */
export class StreamImageSink implements ImageSink {
  readonly revocable = false;
  private readonly writer: BlockWriter;
  private readonly own: boolean;

  /**
   * `own`: end the stream at finish() and destroy it at abort() (not for process.stdout). `copy: false` for a stream
   * that is done with a chunk when its write callback runs (files, pipes, sockets, stdout), so the write buffers can be
   * handed over as they are; other streams (a PassThrough keeps the chunk) get copies.
   */
  constructor(readonly name: string, private readonly stream: Writable, o: { own?: boolean; copy?: boolean } = {}) {
    this.own = o.own ?? false;
    const copy = o.copy ?? true;
    this.writer = new BlockWriter((buf, from, to) => new Promise<void>((resolve, reject) => {
      const chunk = copy ? Buffer.from(buf.subarray(from, to)) : buf.subarray(from, to);
      stream.write(chunk, (err) => (err ? reject(this.failed(err)) : resolve()));
    }), { zeros: 'write' });
  }

  private failed(err: Error): Error {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED') return new ToolError(`the reader of ${this.name} went away before the image was complete`, { code: 'IO_ERROR', cause: err });
    return ioError(err, this.name, 'write');
  }

  write(data: Buffer, offset: number): Promise<void> {
    return this.writer.write(data, offset);
  }

  async finish(size: number): Promise<void> {
    await this.writer.finish(size);
    if (this.own) await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(this.failed(err)) : resolve())));
  }

  async abort(): Promise<void> {
    await this.writer.stop();
    if (this.own) this.stream.destroy();
  }
}

export interface OpenImageSinkOptions {
  /** The manifest's image size: a device must be at least this large. */
  imageSize: number;
  /** A block device already reads as zeros: leave the image's zero runs unwritten. */
  deviceZeroed?: boolean;
  /** Removes a file sink's temporary file as soon as it fires. */
  signal?: AbortSignal;
  /** For `-`: the stream to write (default process.stdout). */
  stdout?: Writable;
}

/**
 * The sink for an output path: `-` is stdout; a block device is written in place (see openBlockDevice); a character
 * device or FIFO is a stream; anything else is a regular file, created or replaced (see FileImageSink).
 */
export async function openImageSink(target: string, o: OpenImageSinkOptions): Promise<ImageSink> {
  if (target === '-') return o.stdout ? new StreamImageSink('stdout', o.stdout) : new StreamImageSink('stdout', process.stdout, { copy: false });
  const st = await stat(target).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw ioError(err, target, 'look at');
  });
  if (st?.isBlockDevice()) return openBlockDevice(target, { imageSize: o.imageSize, zeroed: o.deviceZeroed });
  if (st?.isCharacterDevice() || st?.isFIFO()) {
    const fh = await open(target, constants.O_WRONLY).catch((err: unknown) => { throw ioError(err, target, 'open'); });
    return new StreamImageSink(target, fh.createWriteStream(), { own: true, copy: false });
  }
  if (st?.isDirectory()) throw new ToolError(`${target} is a directory: give a file, a block device or - (stdout)`, { code: 'IO_ERROR' });
  if (st && !st.isFile()) throw new ToolError(`${target} is not a regular file, a block device or a stream`, { code: 'IO_ERROR' });
  return FileImageSink.create(target, { signal: o.signal });
}
