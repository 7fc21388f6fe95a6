import { createCipheriv, createHash, hash } from 'node:crypto';
import { chmod, copyFile, mkdir, open, rename, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REFERENCE } from './paths.js';

/** The fixtures' `random LABEL N`: the first N bytes of SHA-512(label ‖ uint64be(i)) for i = 0, 1, … */
export function* randomChunks(label: string, n: number, chunk = 1 << 20): Generator<Buffer> {
  const lb = Buffer.from(label, 'utf8');
  const input = Buffer.concat([lb, Buffer.alloc(8)]);
  let i = 0n;
  let left = n;
  while (left > 0) {
    const size = Math.min(chunk, left);
    const out = Buffer.allocUnsafe(Math.ceil(size / 64) * 64);
    for (let off = 0; off < size; off += 64) {
      input.writeBigUInt64BE(i++, lb.length);
      hash('sha512', input, 'buffer').copy(out, off);
    }
    yield out.subarray(0, size);
    left -= size;
  }
}

/**
 * Deterministic incompressible bytes for tests not tied to a fixture: an AES-128-CTR keystream keyed by the label,
 * some fifty times faster than the fixtures' SHA-512 construction.
 */
export function* pseudoRandomChunks(label: string, n: number, chunk = 1 << 20): Generator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', createHash('sha256').update(label).digest().subarray(0, 16), Buffer.alloc(16));
  const zeros = Buffer.alloc(chunk);
  for (let left = n; left > 0; left -= chunk) yield cipher.update(zeros.subarray(0, Math.min(chunk, left)));
}

/** The fixtures' `text LABEL N`: numbered ASCII lines. */
export function* textChunks(label: string, n: number): Generator<Buffer> {
  let i = 0;
  let left = n;
  while (left > 0) {
    const lines: string[] = [];
    for (let k = 0; k < 4096; k++, i++) {
      lines.push(`${label} line ${String(i).padStart(8, '0')}: The quick brown fox jumps over the lazy dog 0123456789\n`);
    }
    const buf = Buffer.from(lines.join(''), 'ascii').subarray(0, left);
    yield buf;
    left -= buf.length;
  }
}

export interface LayoutEntry { kind: 'random' | 'text'; label: string; length: number; offset?: number }
export interface ImageSpec { file: string; size: number; sha1: string; mode: string; mtime: number; sparse: boolean; layout: LayoutEntry[] }

/** Large dense images are generated once per machine and copied: the SHA-512 construction runs at ~25 MB/s. */
const IMAGE_CACHE = join(tmpdir(), 'amitools-test-images');

/** Writes an image from a layout: sparse layouts are a truncated file with data written at offsets. */
export async function writeImage(path: string, spec: Pick<ImageSpec, 'size' | 'mode' | 'mtime' | 'sparse' | 'layout'>): Promise<void> {
  await rm(path, { force: true });
  if (spec.sparse || spec.size < 8 << 20) {
    await writeLayout(path, spec);
  } else {
    // copyFile would not keep holes, so only dense images are cached.
    const cached = join(IMAGE_CACHE, `${createHash('sha256').update(JSON.stringify([spec.size, spec.layout])).digest('hex')}.img`);
    if (!existsSync(cached)) {
      await mkdir(IMAGE_CACHE, { recursive: true });
      const tmp = `${cached}.${process.pid}.tmp`;
      await writeLayout(tmp, spec);
      await rename(tmp, cached);
    }
    await copyFile(cached, path);
  }
  await chmod(path, parseInt(spec.mode, 8));
  await utimes(path, spec.mtime, spec.mtime);
}

async function writeLayout(path: string, spec: Pick<ImageSpec, 'size' | 'sparse' | 'layout'>): Promise<void> {
  await writeFile(path, '');
  if (spec.sparse) await truncate(path, spec.size);
  const fh = await open(path, 'r+');
  try {
    let pos = 0;
    for (const e of spec.layout) {
      if (e.offset !== undefined) pos = e.offset;
      const gen = e.kind === 'random' ? randomChunks(e.label, e.length) : textChunks(e.label, e.length);
      for (const buf of gen) {
        await fh.write(buf, 0, buf.length, pos);
        pos += buf.length;
      }
    }
  } finally {
    await fh.close();
  }
}

export interface ReferenceCase {
  case: string;
  commands: Record<string, string>;
  image: ImageSpec & { kept_in_case_dir: boolean };
  tar: { sha1: string; length: number; member_name: string; typeflag: string };
  keys: Record<string, string>;
  decrypted: { key_hex: string; iv_hex: string };
  manifest: { file: string; parts: { filename: string; sha1: string; size: number }[] };
  parts_kept?: boolean;
  user: string;
  arch: string;
}

export function readCase(name: string): ReferenceCase {
  return JSON.parse(readFileSync(join(REFERENCE, name, 'case.json'), 'utf8')) as ReferenceCase;
}

/**
 * The image of a reference case in dir, with the mode and mtime the original bundled (both are in the tar header):
 * a copy of the kept image (the shared checkout has other modes and times), or regenerated.
 */
export async function caseImage(name: string, dir: string): Promise<string> {
  const c = readCase(name);
  const path = join(dir, c.image.file);
  if (c.image.kept_in_case_dir) {
    await copyFile(join(REFERENCE, name, c.image.file), path);
    await chmod(path, parseInt(c.image.mode, 8));
    await utimes(path, c.image.mtime, c.image.mtime);
  } else {
    await writeImage(path, c.image);
  }
  return path;
}

export function sha1File(path: string): string {
  return createHash('sha1').update(readFileSync(path)).digest('hex');
}
