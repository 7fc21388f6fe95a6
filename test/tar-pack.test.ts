import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, statSync, chmodSync, utimesSync, truncateSync, openSync, writeSync, closeSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { readCase, writeImage, randomChunks } from './helpers/images.js';
import { createTarPack, describeImage } from '../src/stream/tar-pack.js';

const CASES = ['tiny', 'multipart', 'sparse', 'sparse-enddata', 'options', 'realcert', 'manyparts'];

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'amitools-tarpack-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function packDigest(path: string, name: string): Promise<{ sha1: string; length: number }> {
  const src = await describeImage(path, name);
  const hash = createHash('sha1');
  let length = 0;
  for await (const chunk of createTarPack(src)) {
    hash.update(chunk as Buffer);
    length += (chunk as Buffer).length;
  }
  return { sha1: hash.digest('hex'), length };
}

describe('createTarPack reproduces the original bundles\' tar streams', () => {
  it.each(CASES)('%s', async (name) => {
    const c = readCase(name);
    const path = join(dir, c.image.file);
    await writeImage(path, c.image);
    const got = await packDigest(path, c.tar.member_name);
    expect(got).toEqual({ sha1: c.tar.sha1, length: c.tar.length });
    rmSync(path);
  });
});
