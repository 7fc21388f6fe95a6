// Must show (issue 9): bundleImage into an S3 part store and unbundle from it, in-process, byte-exact, with no part
// file on local disk; the same operations against a directory store.
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleImage, unbundle, DirectoryStore, S3Store, createS3Target } from '../../src/index.js';
import { scratch } from '../helpers/bundles.js';
import { pseudoRandomChunks, sha1File } from '../helpers/images.js';
import { key } from '../helpers/paths.js';
import { checkClient, listKeys } from '../helpers/s3-fixture.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';

let server: S3rver;
const work = scratch('store-roundtrip');
const keys = { userCertPath: key('user-cert.pem'), userKeyPath: key('user-key.pem'), ec2CertPath: key('ec2-cert.pem') };

// A temp dir of our own: other suites may leave part files in the shared one while they run.
const ownTmp = scratch('store-roundtrip-tmp');
beforeAll(async () => {
  server = await startS3rver(); // its data directory sits in the shared temp dir: set ours after it
  process.env.TMPDIR = ownTmp.dir;
  await checkClient(server.url).send(new CreateBucketCommand({ Bucket: 'store' }));
});
afterAll(async () => {
  await server?.stop();
  work.cleanup();
  ownTmp.cleanup();
});

function s3Store(prefix: string): S3Store {
  return new S3Store(createS3Target({ bucket: `store/${prefix}`, endpoint: server.url, accessKey: 'S3RVER', secretKey: 'S3RVER' }));
}

/** Part files anywhere we could have written them: the work dir and the temp dir. */
function partFilesOnDisk(): string[] {
  expect(tmpdir()).toBe(ownTmp.dir);
  return [work.dir, tmpdir()].flatMap((d) => readdirSync(d, { recursive: true }).map(String).filter((f) => /\.part\.\d+/.test(f)));
}

describe('bundleImage → S3 store → unbundle', () => {
  it('a 3-part image: parts and manifest in S3 only, unbundled byte-exact', async () => {
    const image = join(work.dir, 'three.img');
    writeFileSync(image, Buffer.concat([...pseudoRandomChunks('store-three', 25 << 20)]));
    const store = s3Store('three');
    const events: string[] = [];
    const r = await bundleImage({ ...keys, image, store, user: '123456789012', arch: 'x86_64', onEvent: (e) => { if (e.type === 'part') events.push(e.name); } });
    expect(r.manifest.parts.map((p) => p.filename)).toEqual(['three.img.part.0', 'three.img.part.1', 'three.img.part.2']);
    expect(events).toEqual(['three.img.part.0', 'three.img.part.1', 'three.img.part.2']);
    expect((await listKeys(checkClient(server.url), 'store', 'three/')).sort()).toEqual(
      ['three/three.img.manifest.xml', 'three/three.img.part.0', 'three/three.img.part.1', 'three/three.img.part.2']);
    expect(partFilesOnDisk()).toEqual([]);

    const out = join(work.dir, 'three-out');
    (await import('node:fs')).mkdirSync(out);
    const u = await unbundle({ manifest: { name: 'three.img.manifest.xml' }, store, privateKeyPath: keys.userKeyPath, destination: out, certPath: keys.userCertPath, prefetch: 2 });
    expect(u.files).toEqual([join(out, 'three.img')]);
    expect(sha1File(join(out, 'three.img'))).toBe(sha1File(image));
  });

  it('a compressible image: parts first named for the most parts it could need, renamed inside S3 to the digit rule', async () => {
    const image = join(work.dir, 'zeros.img');
    writeFileSync(image, Buffer.concat([Buffer.alloc(120 << 20), ...pseudoRandomChunks('store-zeros', 1 << 20)]));
    const store = s3Store('zeros');
    const r = await bundleImage({ ...keys, image, store, user: '123456789012', arch: 'x86_64' });
    expect(r.manifest.parts.map((p) => p.filename)).toEqual(['zeros.img.part.0']);
    expect((await listKeys(checkClient(server.url), 'store', 'zeros/')).sort()).toEqual(['zeros/zeros.img.manifest.xml', 'zeros/zeros.img.part.0']);
    const out = join(work.dir, 'zeros-out');
    (await import('node:fs')).mkdirSync(out);
    await unbundle({ manifest: { name: 'zeros.img.manifest.xml' }, store, privateKeyPath: keys.userKeyPath, destination: out });
    expect(sha1File(join(out, 'zeros.img'))).toBe(sha1File(image));
  });

  it('a directory store: the same operations, the same bytes', async () => {
    const image = join(work.dir, 'dir.img');
    writeFileSync(image, Buffer.concat([...pseudoRandomChunks('store-dir', 11 << 20)]));
    const dir = join(work.dir, 'bundle');
    (await import('node:fs')).mkdirSync(dir);
    const store = new DirectoryStore(dir);
    await bundleImage({ ...keys, image, store, user: '123456789012', arch: 'x86_64' });
    expect(readdirSync(dir).sort()).toEqual(['dir.img.manifest.xml', 'dir.img.part.0', 'dir.img.part.1']);
    const out = join(work.dir, 'dir-out');
    (await import('node:fs')).mkdirSync(out);
    await unbundle({ manifest: { path: join(dir, 'dir.img.manifest.xml') }, store, privateKeyPath: keys.userKeyPath, destination: out });
    expect(sha1File(join(out, 'dir.img'))).toBe(sha1File(image));
  });
});
