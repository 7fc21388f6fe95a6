import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readManifest, readManifestBytes } from '../../src/bundle/manifest-file.js';
import { ToolError } from '../../src/errors.js';
import { key, reference } from '../helpers/paths.js';

const dir = mkdtempSync(join(tmpdir(), 'amitools-manifest-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function errorOf(p: Promise<unknown>): Promise<ToolError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ToolError);
    return err as ToolError;
  }
  throw new Error('no error');
}

describe('readManifestBytes: bounded, regular files only', () => {
  it('reads a manifest file exactly', async () => {
    const bytes = await readManifestBytes(reference('tiny', 'tiny.img.manifest.xml'));
    expect(bytes.equals(Buffer.from(execFileSync('cat', [reference('tiny', 'tiny.img.manifest.xml')])))).toBe(true);
  });

  it('refuses a FIFO at once instead of waiting for a writer', async () => {
    const fifo = join(dir, 'fifo.manifest.xml');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    const err = await errorOf(readManifestBytes(fifo));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err.message).toBe(`cannot read manifest ${fifo}: it is not a regular file`);
    expect(err.code).toBe('MANIFEST_INVALID');
  });

  it('refuses a symlink to /dev/zero without reading it', async () => {
    const link = join(dir, 'zero.manifest.xml');
    symlinkSync('/dev/zero', link);
    expect((await errorOf(readManifestBytes(link))).message).toMatch(/it is not a regular file$/);
  });

  it('refuses a file over 1 MiB, a directory, a missing file', async () => {
    const big = join(dir, 'big.manifest.xml');
    writeFileSync(big, Buffer.alloc((1 << 20) + 1, 0x20));
    expect((await errorOf(readManifestBytes(big))).message).toMatch(/over 1 MiB/);
    expect((await errorOf(readManifestBytes(dir))).message).toMatch(/it is a directory|it is not a regular file/);
    const missing = await errorOf(readManifestBytes(join(dir, 'nope.xml')));
    expect(missing.message).toMatch(/file not found$/);
    expect(missing.code).toBe('IO_ERROR');
  });
});

describe('readManifest: the signature over the elements read', () => {
  it('verifies a fixture with its certificate', async () => {
    const m = await readManifest(reference('tiny', 'tiny.img.manifest.xml'), key('user-cert.pem'));
    expect(m.parts[0]!.filename).toBe('tiny.img.part.0');
  });

  it('a signature that does not verify is SIGNATURE_MISMATCH', async () => {
    const err = await errorOf(readManifest(reference('tiny', 'tiny.img.manifest.xml'), key('user4096-cert.pem')));
    expect(err.code).toBe('SIGNATURE_MISMATCH');
    expect(err.message).toMatch(/fails authentication with .*user4096-cert\.pem/);
  });

  it('a genuinely signed region hidden in a comment, with other elements read, is MANIFEST_INVALID', async () => {
    const xml = execFileSync('cat', [reference('tiny', 'tiny.img.manifest.xml')]).toString('utf8');
    const start = xml.indexOf('<machine_configuration>');
    const end = xml.indexOf('</image>') + '</image>'.length;
    const other = execFileSync('cat', [reference('multipart', 'multipart.img.manifest.xml')]).toString('utf8');
    const attack = xml.slice(0, start) + `<!--${xml.slice(start, end)}-->` +
      other.slice(other.indexOf('<machine_configuration>'), other.indexOf('</image>') + 8) + xml.slice(end);
    const path = join(dir, 'attack.manifest.xml');
    writeFileSync(path, attack);
    const err = await errorOf(readManifest(path, key('user-cert.pem')));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toMatch(/comments are not allowed/);
    copyFileSync(reference('tiny', 'tiny.img.manifest.xml'), path);
    expect((await readManifest(path, key('user-cert.pem'))).name).toBe('tiny.img');
  });
});
