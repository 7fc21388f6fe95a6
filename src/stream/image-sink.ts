// Where an image's bytes go when it is written as one thing rather than extracted into a directory: a regular file
// (holes restored), a block device (every byte, or only the data when the device is known to read as zeros), or a
// stream such as stdout (every byte, in order). The unbundler hands the image's single tar member to a sink;
// ec2-convert-to-ebs hands it to a device or an EBS snapshot the same way.

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
