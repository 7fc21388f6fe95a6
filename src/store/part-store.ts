import { createHash } from 'node:crypto';
import { ToolError } from '../errors.js';
import { checkPartLayout, partLength, partName } from '../format/part-name.js';
import type { Manifest, ManifestPart } from '../format/manifest.js';

/** What a bundle's stages measured of one part: written into the manifest, sent as Content-MD5. */
export interface PartSums { sha1: string; md5?: string }

/**
 * Where a bundle's parts and manifest live: a directory or an S3 prefix. Operations read and write bundles only
 * through this interface, so bundling, unbundling and transfers are the same code whatever the store.
 */
export interface PartStore {
  /** For messages: a directory path or s3://bucket/prefix. */
  readonly location: string;
  /** Whether a part that fails its digest is worth one more read (a transfer can go bad; a local file cannot). */
  readonly rereadOnMismatch: boolean;
  /** The manifest's bytes, refused past MAX_MANIFEST_BYTES. */
  readManifest(name: string): Promise<Buffer>;
  /**
   * Exactly `size` bytes of a part; a longer or shorter part is refused without reading past `size` + 1 bytes.
   * `into` (at least `size` bytes) is where to put them, in order: the result is then a view of it. `onBytes(n)` says
   * that n more bytes are in place; a negative n takes back all reported so far, when the read starts over.
   */
  readPart(name: string, size: number, onBytes?: (n: number) => void, into?: Buffer): Promise<Buffer>;
  /** Where it is cheap (a local directory): checks that every part is there, a regular file of its size, before work starts. */
  precheck?(parts: { name: string; size: number }[]): Promise<void>;
  /** Starts writing a bundle: nothing appears under a final name before commit(). */
  createWriter(o: WriterOptions): PartWriter;
}

/**
 * How the writer names parts until commit: from the bundle's name and the most parts it can have (a bundle being
 * made), or the names a manifest already gives (a bundle being copied).
 */
export type WriterOptions = { prefix: string; maxParts: number } | { names: readonly string[] };

/** The name part `index` is written under before commit. */
export function provisionalName(o: WriterOptions, index: number): string {
  return 'names' in o ? o.names[index]! : partName(o.prefix, index, o.maxParts);
}

/** A bundle being written: parts in any order under provisional names, then all of it at once, manifest last. */
export interface PartWriter {
  /** `onBytes` reports the bytes sent as they go, where the store can tell (S3). `data` is the caller's again once the promise settles. */
  putPart(index: number, data: Buffer, sums: PartSums, onBytes?: (n: number) => void): Promise<void>;
  /** Gives the parts their final names (in index order) and then writes the manifest, if any. */
  commit(names: string[], manifest?: { name: string; data: Buffer }): Promise<void>;
  /**
   * Removes everything written so far; with `keep`, a remote store leaves the parts it holds in place (a local
   * store's temporaries always go). What happened to the parts a remote store holds, if it held any.
   */
  abort(o?: { keep?: boolean }): Promise<AbortReport | undefined>;
}

/** What a writer's abort did with the parts already in a remote store. */
export interface AbortReport {
  /** Parts that had been stored (whole) before the failure. */
  parts: number;
  /** Where they are (e.g. s3://bucket/prefix/). */
  location: string;
  kept: boolean;
  /** Objects whose removal failed (left behind although not kept). */
  failed: number;
}

/** The size each part must have: the manifest's bundled_size cut at PART_SIZE. Refuses manifests where that fails. */
export function expectedPartSizes(m: Pick<Manifest, 'bundledSize' | 'size' | 'parts'>, source: string): number[] {
  checkPartLayout(m, source);
  return m.parts.map((_, i) => partLength(m.bundledSize, i));
}

/** A part whose length is not the one the manifest's bundled_size gives it. */
export function partLengthError(where: string, actual: string, length: number): ToolError {
  return new ToolError(`${where} is ${actual}, but the manifest's bundled_size makes it ${length} bytes; make or download the bundle again`, { code: 'PART_DIGEST_MISMATCH' });
}

/** SHA-1 (hex) of a part; the MD5 S3 wants (base64) is taken by the S3 store when it sends the part. */
export function partSums(data: Buffer): PartSums {
  return { sha1: createHash('sha1').update(data).digest('hex') };
}

/** The Content-MD5 of a body. */
export function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

/**
 * The one part verifier: reads a part bounded by its expected size and checks its SHA-1 against the manifest before
 * any of its bytes are used. A mismatch is read once more where the store says a transfer may have gone bad.
 */
export async function readVerifiedPart(store: PartStore, part: ManifestPart, size: number, onBytes?: (n: number) => void, into?: Buffer): Promise<{ data: Buffer; sums: PartSums }> {
  const buf = into ?? Buffer.allocUnsafe(size);
  for (let attempt = 1; ; attempt++) {
    let counted = 0;
    // Hashed as the bytes arrive: no pass of its own after the read, and no 10 MiB stretch of work that would hold up
    // the event loop (and with it the stages that wait on it, such as inflating).
    let hash = createHash('sha1');
    let hashed = 0;
    const data = await store.readPart(part.filename, size, (n) => {
      if (n < 0) [hash, hashed] = [createHash('sha1'), 0];
      else hash.update(buf.subarray(hashed, (hashed += n)));
      counted += n;
      onBytes?.(n);
    }, buf);
    const inPlace = data.buffer === buf.buffer && data.byteOffset === buf.byteOffset && hashed === size;
    let sha1 = inPlace ? hash.digest('hex') : partSums(data).sha1;
    // A store that reported its bytes otherwise than readPart's contract says is not taken for a corrupt part.
    if (sha1 !== part.digest.toLowerCase() && inPlace) sha1 = partSums(data).sha1;
    if (sha1 === part.digest.toLowerCase()) return { data, sums: { sha1 } };
    onBytes?.(-counted);
    if (!store.rereadOnMismatch || attempt >= 2) {
      throw new ToolError(
        `part ${part.filename} in ${store.location} is corrupt: its SHA-1 is ${sha1} but the manifest says ${part.digest}` +
          `${attempt > 1 ? ' (read twice)' : ''}; the part is damaged: make or download the bundle again`,
        { code: 'PART_DIGEST_MISMATCH' },
      );
    }
  }
}

/** Collects a stream into exactly `size` bytes (in `into` if given), refusing a longer or shorter one without reading further. */
export async function collectExactly(stream: AsyncIterable<Buffer> & { destroy?: () => void }, size: number, what: string, onBytes?: (n: number) => void, into?: Buffer): Promise<Buffer> {
  if (into && into.length < size) throw new RangeError(`a ${into.length}-byte buffer cannot hold ${what} (${size} bytes)`);
  const out = into ? into.subarray(0, size) : Buffer.allocUnsafe(size);
  let n = 0;
  for await (const chunk of stream) {
    if (n + chunk.length > size) {
      stream.destroy?.();
      throw partLengthError(what, `over ${size} bytes long`, size);
    }
    chunk.copy(out, n);
    n += chunk.length;
    onBytes?.(chunk.length);
  }
  if (n !== size) throw partLengthError(what, `${n} bytes long`, size);
  return out;
}
