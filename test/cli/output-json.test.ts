// --output json on every command: one JSON document on stdout (nothing else there), its fields what was done.
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { key, reference } from '../helpers/paths.js';
import { runCli, type RunResult } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { sha1File } from '../helpers/images.js';
import { checkClient, listKeys, s3rverWithMultipartBundle } from '../helpers/s3-fixture.js';

const work = scratch('json');
afterAll(work.cleanup);

interface Part { name: string; size: number; sha1: string }
interface Doc { command: string; elapsedSeconds: number; parts: Part[]; [k: string]: unknown }

/** The whole of stdout is one JSON document; the run succeeded and said nothing on stderr (but the warnings allowed). */
function doc(r: RunResult, command: string, warnings: RegExp[] = []): Doc {
  expect(r.code, r.stderr).toBe(0);
  // Retries are announced on stderr by design (s3rver sometimes answers 500 under load).
  expect(r.stderr.split('\n').filter((l) => l && !/^Retrying /.test(l) && !warnings.some((w) => w.test(l)))).toEqual([]);
  const d = JSON.parse(r.stdout) as Doc;
  expect(d.command).toBe(command);
  expect(typeof d.elapsedSeconds).toBe('number');
  expect(d.elapsedSeconds).toBeGreaterThanOrEqual(0);
  return d;
}

/** Each part in the document is a file in `dir` with that size and SHA-1. */
function expectPartsOnDisk(parts: Part[], dir: string): void {
  expect(parts.length).toBeGreaterThan(0);
  for (const p of parts) {
    expect(p.size, p.name).toBe(statSync(join(dir, p.name)).size);
    expect(p.sha1, p.name).toBe(sha1File(join(dir, p.name)));
  }
}

const BUNDLE = ['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '1234-5678-9012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem')];

describe('local commands', () => {
  it('ec2-bundle-image: manifest path, image size and SHA-1, bundled size, parts with sizes and digests', async () => {
    const out = join(work.dir, 'bundle');
    mkdirSync(out);
    const image = reference('tiny', 'tiny.img');
    const d = doc(await runCli('ec2-bundle-image', ['-i', image, '-d', out, '-p', 'j', '--output', 'json', ...BUNDLE]), 'ec2-bundle-image');
    expect(d.manifest).toBe(join(out, 'j.manifest.xml'));
    expect(d.image).toBe(image);
    expect(d.imageSize).toBe(statSync(image).size);
    expect(d.architecture).toBe('x86_64');
    expectPartsOnDisk(d.parts, out);
    expect(d.bundledSize).toBe(d.parts.reduce((n, p) => n + p.size, 0));
    const xml = readFileSync(d.manifest as string, 'utf8');
    expect(xml).toContain(`<digest algorithm='SHA1'>${d.imageSha1}</digest><size>${d.imageSize}</size>`);
    expect(readdirSync(out).sort()).toEqual(['j.manifest.xml', ...d.parts.map((p) => p.name)].sort());
  });

  it('ec2-unbundle: the files written, the image size and digest, the parts used', async () => {
    const out = join(work.dir, 'unbundle');
    mkdirSync(out);
    const manifest = reference('multipart', 'multipart.img.manifest.xml');
    const d = doc(await runCli('ec2-unbundle', ['-m', manifest, '-k', key('user-key.pem'), '-s', reference('multipart'), '-d', out, '--output', 'json']), 'ec2-unbundle');
    expect(d.files).toEqual([join(out, 'multipart.img')]);
    expect(d.imageSize).toBe(statSync(join(out, 'multipart.img')).size);
    expect(d.parts.map((p) => p.name)).toEqual(['multipart.img.part.0', 'multipart.img.part.1', 'multipart.img.part.2']);
    expectPartsOnDisk(d.parts, reference('multipart'));
  });

  it('ec2-migrate-manifest: the manifest, its backup, the ids written and what became of EC2\'s key', async () => {
    const dir = join(work.dir, 'migrate');
    mkdirSync(dir);
    const path = join(dir, 'tiny.img.manifest.xml');
    copyFileSync(reference('migrated', 'tiny.img.manifest.xml.bak'), path);
    chmodSync(path, 0o644);
    const d = doc(await runCli('ec2-migrate-manifest', ['-m', path, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '--no-mapping',
      '--kernel', 'aki-aaaa1111', '--ramdisk', 'ari-bbbb2222', '--ec2cert', key('ec2-cert.pem'), '--batch', '--output', 'json'],
    { env: { AWS_EC2_METADATA_DISABLED: 'true' } }), 'ec2-migrate-manifest');
    expect(d).toMatchObject({ manifest: path, backup: `${path}.bak`, kernelId: 'aki-aaaa1111', ramdiskId: 'ari-bbbb2222', ec2Key: { action: 'reencrypted', certificate: key('ec2-cert.pem') } });
    expect(readFileSync(path, 'utf8')).toContain('<kernel_id>aki-aaaa1111</kernel_id><ramdisk_id>ari-bbbb2222</ramdisk_id>');
  });

  it('ec2-ami-tools-version: the versions', async () => {
    const d = doc(await runCli('ec2-ami-tools-version', ['--output', 'json']), 'ec2-ami-tools-version');
    const text = (await runCli('ec2-ami-tools-version', [])).stdout.split('\n')[0];
    expect(`${d.version} ${d.manifestVersion} (${d.name})`).toBe(text);
  });

  it('errors stay one line on stderr, and stdout stays empty', async () => {
    const r = await runCli('ec2-unbundle', ['-m', '/nonexistent.xml', '-k', key('user-key.pem'), '--output', 'json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')[0]).toBe("--manifest has invalid value '/nonexistent.xml': File does not exist or is not a file.");
  });
});

describe('ec2-bundle-vol', () => {
  it('the image, and the bundle made of it', async () => {
    expect(process.getuid?.(), 'ec2-bundle-vol runs as root').toBe(0);
    const vol = join(work.dir, 'vol');
    mkdirSync(join(vol, 'etc'), { recursive: true });
    writeFileSync(join(vol, 'etc', 'hostname'), 'json-test\n');
    const out = join(work.dir, 'vol-out');
    mkdirSync(out);
    const d = doc(await runCli('ec2-bundle-vol', ['-v', vol, '-d', out, '-P', 'none', '-s', '16', '--no-inherit', '--batch', '--output', 'json', ...BUNDLE]), 'ec2-bundle-vol',
      [/^WARNING: No GRUB found/]);
    expect(d.image).toBe(join(out, 'image'));
    expect(d.imageSize).toBe(16 * 1024 * 1024);
    expect(d.partitionTable).toBe('none');
    expect(d.manifest).toBe(join(out, 'image.manifest.xml'));
    expectPartsOnDisk(d.parts, out);
  });
});

describe('S3 commands on s3rver', () => {
  const ctx = s3rverWithMultipartBundle();
  const s3 = () => ['--url', ctx.server.url, '-a', 'S3RVER', '-s', 'S3RVER', '--batch', '--output', 'json'];

  it('upload, download, delete: S3 location, parts, what was deleted', async () => {
    const up = doc(await runCli('ec2-upload-bundle', ['-b', 'jsonb/pre', '-m', ctx.bundle.manifest, ...s3()]), 'ec2-upload-bundle');
    expect(up).toMatchObject({ bucket: 'jsonb', keyPrefix: 'pre/', location: 's3://jsonb/pre/multipart.img.manifest.xml', imageLocation: 'jsonb/pre/multipart.img.manifest.xml' });
    expect([...(up.uploaded as string[])].sort()).toEqual(ctx.bundle.parts);
    expectPartsOnDisk(up.parts, ctx.bundle.dir);
    const keys = await listKeys(checkClient(ctx.server.url), 'jsonb');
    expect(keys.sort()).toEqual(['pre/multipart.img.manifest.xml', ...ctx.bundle.parts.map((p) => `pre/${p}`)].sort());

    const dir = join(work.dir, 'dl');
    mkdirSync(dir);
    const down = doc(await runCli('ec2-download-bundle', ['-b', 'jsonb/pre', '-p', 'multipart.img', '-d', dir, ...s3()]), 'ec2-download-bundle');
    expect(down).toMatchObject({ source: 's3://jsonb/pre/multipart.img.manifest.xml', manifest: join(dir, 'multipart.img.manifest.xml') });
    expectPartsOnDisk(down.parts, dir);
    expect(down.parts).toEqual(up.parts);
    expect(down.bundledSize).toBe(down.parts.reduce((n, p) => n + p.size, 0));

    const del = doc(await runCli('ec2-delete-bundle', ['-b', 'jsonb/pre', '-p', 'multipart.img', '-y', '--no-ec2-check', ...s3()]), 'ec2-delete-bundle');
    expect([...(del.deleted as string[])].sort()).toEqual(['multipart.img.manifest.xml', ...ctx.bundle.parts].sort());
    expect(del.bucketDeleted).toBe(false);
    expect(await listKeys(checkClient(ctx.server.url), 'jsonb')).toEqual([]);
  });
});
