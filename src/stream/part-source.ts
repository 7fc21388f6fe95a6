import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { ToolError } from '../errors.js';
import { ioError } from '../io-errors.js';
import type { ManifestPart } from '../format/manifest.js';
import { partLength } from '../format/part-name.js';
import { partLengthError } from './length-cap.js';

/** Opens part `index`, whose exact length is `length`; the stream may stop after length + 1 bytes. */
export type OpenPart = (part: ManifestPart, index: number, length: number) => Promise<Readable> | Readable;

/**
 * The bundle's ciphertext: its parts in index order, each checked against the manifest's SHA-1 before any of
 * its bytes go downstream, so a bad part is named instead of surfacing later as a decryption or gzip error.
 * Each part is read up to the length `bundledSize` gives it and no further: a part longer or shorter is refused,
 * so what is held is bounded by the manifest, not by the part. Holds one part (10 MiB) in memory. Reading the next
 * part ahead was measured: no faster, 10 MiB more.
 */
export function createPartSource(parts: ManifestPart[], bundledSize: number, openPart: OpenPart): Readable {
  const load = async (index: number): Promise<Buffer[]> => {
    const part = parts[index];
    const length = partLength(bundledSize, index);
    const cannotRead = (err: unknown) => ioError(err, part.filename, 'read part');
    let stream: Readable;
    try {
      stream = await openPart(part, index, length);
    } catch (err) {
      throw cannotRead(err);
    }
    const chunks: Buffer[] = [];
    const hash = createHash('sha1');
    let seen = 0;
    try {
      for await (const chunk of stream) {
        seen += (chunk as Buffer).length;
        if (seen > length) throw partLengthError(`part ${part.filename}`, `over ${length} bytes long`, length, 'bundle or download it again');
        hash.update(chunk as Buffer);
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      stream.destroy();
      throw cannotRead(err);
    }
    if (seen !== length) throw partLengthError(`part ${part.filename}`, `${seen} bytes long`, length, 'bundle or download it again');
    const digest = hash.digest('hex');
    if (digest !== part.digest.toLowerCase()) {
      throw new ToolError(
        `part ${part.filename} is corrupt: its SHA-1 is ${digest} but the manifest says ${part.digest}; get the part again`,
        { code: 'PART_DIGEST_MISMATCH' },
      );
    }
    return chunks;
  };

  async function* generate(): AsyncGenerator<Buffer> {
    for (let i = 0; i < parts.length; i++) yield* await load(i);
  }

  return Readable.from(generate(), { objectMode: false, highWaterMark: 1 << 20 });
}
