// ec2-bundle-image / ec2-bundle-vol --bucket: parts straight to S3 (s3rver behind the fault proxy, whose log is the
// wire), the manifest last, nothing part-sized on local disk; faults, cleanup, --keep-partial; --register against the
// EC2 stand-in; peak RSS of a 1 GiB bundle.
import { execSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, watch, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { field, opensslDecryptHex, opensslVerify, partEntries, scratch } from '../helpers/bundles.js';
import { makeExt2Image, writeRandom, blankFile } from '../helpers/disk-images.js';
import { startEc2Standin, type Ec2Standin } from '../helpers/ec2-standin.js';
import { objectRequests, startFaultProxy, type FaultProxy, type LoggedRequest } from '../helpers/fault-proxy.js';
import { randomChunks, sha1File } from '../helpers/images.js';
import { startCli } from '../helpers/interrupt.js';
import { key, unmetPrerequisite } from '../helpers/paths.js';
import { runCli, runCliPeakRss } from '../helpers/run.js';
import { checkClient, listKeys } from '../helpers/s3-fixture.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';

const MiB = 1 << 20;
const KERNEL = 'aki-0a1b2c3d';
const RAMDISK = 'ari-4e5f6a7b';
const KEYS = ['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--batch'];

let s3: S3rver;
let proxy: FaultProxy;
let ec2: Ec2Standin;
const work = scratch('bundle-s3');
/** 25 MiB of pseudo-random data: three parts. */
let image: string;

const env = () => ({
  AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'amitools-test-none', AWS_CONFIG_FILE: '/dev/null',
  AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true', AWS_ENDPOINT_URL: '', AWS_ENDPOINT_URL_S3: '',
  AWS_ENDPOINT_URL_EC2: ec2.url, AMITOOLS_EC2_ENDPOINT: '',
});
const s3Flags = (url = proxy.url) => ['--url', url, '--access-key', 'S3RVER', '--secret-key', 'S3RVER', '--timeout', '2'];

function freshDir(name: string): string {
  const d = join(work.dir, name);
  mkdirSync(d);
  return d;
}

const bundleImage = (img: string, dest: string, extra: string[], e: NodeJS.ProcessEnv = {}) =>
  runCli('ec2-bundle-image', ['-i', img, '-d', dest, ...KEYS, ...extra], { env: { ...env(), ...e } });

/** PUTs of part objects (not server-side copies) that S3 accepted, in wire order. */
const partPuts = (bucket: string): LoggedRequest[] =>
  objectRequests(proxy.log, 'PUT', bucket).filter((q) => /\.part\.\d+$/.test(q.path) && !q.headers['x-amz-copy-source'] && !q.fault);

/**
 * Every name created in `dirs` (and below) while `run` runs, from inotify (fs.watch): no file is missed however briefly
 * it lived, unlike polling.
 */
async function created<T>(dirs: string[], run: () => Promise<T>): Promise<{ result: T; names: string[] }> {
  const names: string[] = [];
  const watchers = dirs.map((d) => watch(d, { recursive: true }, (_event, name) => { if (name) names.push(`${d}/${name}`); }));
  try {
    const result = await run();
    await sleep(300); // events still queued
    return { result, names };
  } finally {
    for (const w of watchers) w.close();
  }
}

/** The bundle in `dir` unpacked the original's way (openssl enc -d | gunzip | tar -x) after the manifest's signature checked out. */
function unpackWithStandardTools(dir: string, manifestName: string, out: string): void {
  const xml = readFileSync(join(dir, manifestName), 'utf8');
  expect(opensslVerify(xml, key('user-cert.pem'), work.dir)).toBe(true);
  const keyHex = opensslDecryptHex(field(xml, 'user_encrypted_key'), key('user-key.pem'), work.dir);
  const ivHex = opensslDecryptHex(field(xml, 'user_encrypted_iv'), key('user-key.pem'), work.dir);
  const parts = partEntries(xml).map((p) => `'${join(dir, p.filename)}'`).join(' ');
  execSync(`cat ${parts} | openssl enc -d -aes-128-cbc -K ${keyHex} -iv ${ivHex} | gunzip | tar -xS -C '${out}'`, { shell: '/bin/bash' });
}

/** ec2-download-bundle, then ec2-unbundle: the image's SHA-1. */
async function downloadAndUnbundle(bucket: string, name: string): Promise<{ dir: string; sha1: string }> {
  const dir = freshDir(`dl-${bucket.replace(/\W/g, '-')}`);
  const d = await runCli('ec2-download-bundle', ['-b', bucket, '-p', name, '-d', dir, ...s3Flags(s3.url), '--batch'], { env: env() });
  expect([d.code, d.stderr]).toEqual([0, '']);
  const out = freshDir(`un-${bucket.replace(/\W/g, '-')}`);
  const u = await runCli('ec2-unbundle', ['-m', join(dir, `${name}.manifest.xml`), '-k', key('user-key.pem'), '-s', dir, '-d', out, '--cert', key('user-cert.pem'), '--batch']);
  expect([u.code, u.stderr]).toEqual([0, '']);
  return { dir, sha1: sha1File(join(out, name)) };
}

beforeAll(async () => {
  s3 = await startS3rver();
  proxy = await startFaultProxy(s3.url);
  ec2 = await startEc2Standin({ regions: ['us-east-1'], images: {}, s3: { url: s3.url } });
  image = join(work.dir, 'multi.img');
  blankFile(image, 25 * MiB);
  writeRandom(image, 0, 25 * MiB, 'bundle-s3 multi');
});
afterAll(async () => {
  await ec2?.close();
  await proxy?.stop();
  await s3?.stop();
  work.cleanup();
});
beforeEach(() => { proxy.log.length = 0; proxy.rule = undefined; ec2.log.length = 0; ec2.deny.clear(); });

describe('ec2-bundle-image --bucket', () => {
  it('uploads every part, then the manifest; no part touches local disk; byte-exact through ec2-unbundle and through openssl | gunzip | tar', async () => {
    const dest = freshDir('dest');
    const tmp = freshDir('tmp');
    const { result: r, names } = await created([dest, tmp], () => bundleImage(image, dest, ['--bucket', 'straight/some/prefix', ...s3Flags()], { TMPDIR: tmp }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      'Creating bucket...', 'Bundling image file...',
      'Uploaded multi.img.part.0', 'Uploaded multi.img.part.1', 'Uploaded multi.img.part.2',
      'Creating bundle manifest...', `Bundle manifest is ${dest}/multi.img.manifest.xml`,
      'Manifest uploaded to: straight/some/prefix/multi.img.manifest.xml', 'Bundle upload completed.',
      expect.stringMatching(/^Register it with: aws ec2 register-image --image-location straight\/some\/prefix\/multi\.img\.manifest\.xml --name NAME --architecture x86_64$/),
      expect.stringMatching(/^\(Virtualization type unknown \(the image is neither/),
      'ec2-bundle-image complete.', '',
    ]);

    // Only the manifest copy (and its temporary name) was ever created locally.
    expect(names.filter((n) => !/^.*\/\.?multi\.img\.manifest\.xml(\.amitools-\d+-[0-9a-f]{8}\.tmp)?$/.test(n))).toEqual([]);
    expect(names).toContain(`${dest}/multi.img.manifest.xml`);
    expect(readdirSync(dest)).toEqual(['multi.img.manifest.xml']);
    expect(readdirSync(tmp)).toEqual([]);

    // The wire: three part PUTs, each with the ACL and a Content-MD5 matching its body, all answered before the manifest PUT, which is last.
    const puts = objectRequests(proxy.log, 'PUT', 'straight');
    const parts = partPuts('straight');
    expect(parts.map((q) => q.path).sort()).toEqual([0, 1, 2].map((i) => `/straight/some/prefix/multi.img.part.${i}`));
    for (const q of parts) {
      expect(q.status).toBe(200);
      expect(q.headers['x-amz-acl']).toBe('aws-exec-read');
      expect(q.headers['content-md5']).toBe(q.bodyMd5);
    }
    expect(puts.at(-1)!.path).toBe('/straight/some/prefix/multi.img.manifest.xml');
    expect(puts.filter((q) => q.path.endsWith('.manifest.xml'))).toHaveLength(1);
    expect(Math.max(...parts.map((q) => q.seq))).toBeLessThan(puts.at(-1)!.seq);

    const keys = await listKeys(checkClient(s3.url), 'straight');
    expect(keys.sort()).toEqual(['multi.img.manifest.xml', 'multi.img.part.0', 'multi.img.part.1', 'multi.img.part.2'].map((k) => `some/prefix/${k}`));

    const { dir, sha1 } = await downloadAndUnbundle('straight/some/prefix', 'multi.img');
    expect(sha1).toBe(sha1File(image));
    // The local copy is the manifest in the bucket.
    expect(readFileSync(join(dest, 'multi.img.manifest.xml')).equals(readFileSync(join(dir, 'multi.img.manifest.xml')))).toBe(true);
    const viaTools = freshDir('via-tools');
    unpackWithStandardTools(dir, 'multi.img.manifest.xml', viaTools);
    expect(sha1File(join(viaTools, 'multi.img'))).toBe(sha1File(image));
  });

  it('the local-disk check sees part files when there are some: the same watch on a bundle into -d', async () => {
    const dest = freshDir('dest-local');
    const { result: r, names } = await created([dest], () => bundleImage(image, dest, []));
    expect(r.code).toBe(0);
    expect(names.filter((n) => /\.multi\.img\.part\.\d\.amitools-\d+-[0-9a-f]{8}\.tmp$/.test(n)).length).toBeGreaterThanOrEqual(3);
  });

  it('--acl, --session-token, --output json: the ACL and token on every object, the S3 location and each part in the document', async () => {
    const dest = freshDir('dest-json');
    const r = await bundleImage(image, dest, ['--bucket', 'json-out', '--acl', 'bucket-owner-full-control', '--output', 'json', '--session-token', 'TOKEN-1', ...s3Flags()]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      command: 'ec2-bundle-image', bucket: 'json-out', keyPrefix: '', location: 's3://json-out/multi.img.manifest.xml',
      imageLocation: 'json-out/multi.img.manifest.xml', manifest: join(dest, 'multi.img.manifest.xml'),
    });
    const xml = readFileSync(join(dest, 'multi.img.manifest.xml'), 'utf8');
    expect(doc.parts).toEqual(partEntries(xml).map((p, i) => ({ name: p.filename, sha1: p.digest, size: i < 2 ? 10 * MiB : Number(field(xml, 'bundled_size')) - 20 * MiB })));
    const puts = objectRequests(proxy.log, 'PUT', 'json-out');
    expect(puts.map((q) => q.headers['x-amz-acl'])).toEqual(Array(4).fill('bucket-owner-full-control'));
    // --session-token is --delegation-token: the token goes with every request.
    expect(puts.map((q) => q.headers['x-amz-security-token'])).toEqual(Array(4).fill('TOKEN-1'));
  });

  it('refuses S3 flags without --bucket, a bad --acl, and the short S3 letters (exit 1, nothing sent)', async () => {
    const dest = freshDir('dest-refused');
    const url = ['--url', proxy.url];
    for (const [args, message] of [
      [['--register', 'my-ami'], '--register is for bundling straight to S3: add --bucket BUCKET[/PREFIX]'],
      [['--keep-partial'], '--keep-partial is for bundling straight to S3: add --bucket BUCKET[/PREFIX]'],
      [['--region', 'eu-west-1', '--keep-partial'], '--region, --keep-partial are for bundling straight to S3: add --bucket BUCKET[/PREFIX]'],
      [['--bucket', 'x-refused', '--acl', 'everyone', ...url], "--acl has invalid value 'everyone'"],
      [['--bucket', 'x-refused', '--sigv', '3', ...url], "--sigv has invalid value '3'"],
      [['--bucket', 'x-refused', '--register', 'no;semicolons', ...url], "the image name 'no;semicolons' is not one EC2 accepts"],
      [['-b', 'x-refused', ...url], "unknown option '-b'"],
    ] as const) {
      const r = await bundleImage(image, dest, [...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.split('\n')[0], args.join(' ')).toContain(message);
    }
    expect(proxy.log).toEqual([]);
    expect(readdirSync(dest)).toEqual([]);
  });
});

describe('faults while bundling straight to S3', () => {
  /** The first attempt at every part PUT whose index is 1 mod 3 (a third), or every attempt with `forever`. */
  function thirdOfPartPuts(forever: boolean) {
    const seen = new Set<string>();
    proxy.rule = (req) => {
      const m = /\.part\.(\d+)$/.exec(req.path);
      if (req.method !== 'PUT' || !m || Number(m[1]) % 3 !== 1 || req.headers['x-amz-copy-source']) return undefined;
      if (!forever && seen.has(req.path)) return undefined;
      seen.add(req.path);
      return 'slowdown';
    };
  }

  it('a third of the part PUTs failing once: retried from memory, the bundle complete and byte-exact', async () => {
    thirdOfPartPuts(false);
    const dest = freshDir('dest-transient');
    const r = await bundleImage(image, dest, ['--bucket', 'fault-once', ...s3Flags()]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^Retrying PutObject multi\.img\.part\.1 in [\d.]+s \(attempt 2 of 3\): HTTP 503 SlowDown/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(proxy.log.filter((q) => q.fault).map((q) => q.path)).toEqual(['/fault-once/multi.img.part.1']);
    expect((await downloadAndUnbundle('fault-once', 'multi.img')).sha1).toBe(sha1File(image));
  });

  it('endless faults: no manifest anywhere, the parts already uploaded removed, one line saying so', async () => {
    thirdOfPartPuts(true);
    const dest = freshDir('dest-endless');
    const r = await bundleImage(image, dest, ['--bucket', 'fault-endless/p', ...s3Flags()]);
    expect(r.code).toBe(254);
    const uploaded = new Set(partPuts('fault-endless').filter((q) => q.status === 200).map((q) => q.path));
    expect(uploaded.size).toBeGreaterThanOrEqual(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => !l.startsWith('Retrying PutObject p/multi.img.part.1 '))).toEqual([
      `Removed the ${uploaded.size} part${uploaded.size === 1 ? '' : 's'} already uploaded to s3://fault-endless/p/; no manifest was uploaded.`,
      expect.stringMatching(/^ERROR: PutObject on s3:\/\/fault-endless\/p\/multi\.img\.part\.1 failed: SlowDown \(HTTP 503\).*gave up after 3 attempts/),
    ]);
    expect(objectRequests(proxy.log, 'PUT', 'fault-endless').map((q) => q.path)).not.toContain('/fault-endless/p/multi.img.manifest.xml');
    // Each part object tried (stored or not) was deleted after the failure.
    const deletes = objectRequests(proxy.log, 'DELETE', 'fault-endless').map((q) => q.path);
    for (const p of uploaded) expect(deletes).toContain(p);
    expect(await listKeys(checkClient(s3.url), 'fault-endless')).toEqual([]);
    expect(readdirSync(dest)).toEqual([]);
    expect(r.stdout).not.toContain('Manifest uploaded');
  });

  it('endless faults with --keep-partial: the parts already uploaded stay, and the line says where', async () => {
    thirdOfPartPuts(true);
    const dest = freshDir('dest-keep');
    const r = await bundleImage(image, dest, ['--bucket', 'fault-keep/p', '--keep-partial', ...s3Flags()]);
    expect(r.code).toBe(254);
    const uploaded = [...new Set(partPuts('fault-keep').filter((q) => q.status === 200).map((q) => q.path))].sort();
    expect(uploaded.length).toBeGreaterThanOrEqual(1);
    expect(r.stderr).toContain(`\nKept the ${uploaded.length} part${uploaded.length === 1 ? '' : 's'} already uploaded, s3://fault-keep/p/multi.img.part.* (--keep-partial); no manifest was uploaded.\nERROR: `);
    expect(objectRequests(proxy.log, 'DELETE', 'fault-keep')).toEqual([]);
    expect((await listKeys(checkClient(s3.url), 'fault-keep')).map((k) => `/fault-keep/${k}`).sort()).toEqual(uploaded);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('SIGINT part-way: the parts already uploaded are removed, no manifest, exit 130', async () => {
    const dest = freshDir('dest-sigint');
    // Slow part 2 down so that the interrupt lands while the bundle is under way.
    proxy.rule = (req) => (req.method === 'PUT' && req.path.endsWith('.part.2') ? 'stall' : undefined);
    const run = startCli('ec2-bundle-image', ['-i', image, '-d', dest, ...KEYS, '--bucket', 'interrupted', ...s3Flags(), '--timeout', '30'], { env: env() });
    const until = Date.now() + 30_000;
    while (partPuts('interrupted').filter((q) => q.status === 200).length < 2 && Date.now() < until) await sleep(20);
    await sleep(500); // the answers reach the command (part 2 stays stalled meanwhile)
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^Removed the 2 parts already uploaded to s3:\/\/interrupted\/; no manifest was uploaded\.\ninterrupted by SIGINT: /);
    expect(await listKeys(checkClient(s3.url), 'interrupted')).toEqual([]);
    expect(objectRequests(proxy.log, 'PUT', 'interrupted').map((q) => q.path)).not.toContain('/interrupted/multi.img.manifest.xml');
    expect(readdirSync(dest)).toEqual([]);
  });
});

describe('--register on the bundling commands', () => {
  const registers = () => ec2.log.filter((q) => q.action === 'RegisterImage');
  let fsImage: string;
  beforeAll(() => {
    fsImage = join(work.dir, 'fs.img');
    makeExt2Image(fsImage, 4);
  });

  it('ec2-bundle-image of a bare file system: paravirtual, the manifest\'s fields, IMAGE ami-… on stdout in --batch', async () => {
    const r = await bundleImage(fsImage, freshDir('dest-reg'), ['--bucket', 'reg-fs/images', '--register', 'bare fs', '--description', 'from a test',
      '--kernel', KERNEL, '--ramdisk', RAMDISK, '-B', 'ami=sda1,root=/dev/sda1,ephemeral0=sdb', ...s3Flags()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [call, ...more] = registers();
    expect(more).toEqual([]);
    expect(call.params).toEqual({
      ImageLocation: 'reg-fs/images/fs.img.manifest.xml', Name: 'bare fs', Description: 'from a test', Architecture: 'x86_64',
      VirtualizationType: 'paravirtual', KernelId: KERNEL, RamdiskId: RAMDISK, RootDeviceName: '/dev/sda1',
      'BlockDeviceMapping.1.DeviceName': 'sdb', 'BlockDeviceMapping.1.VirtualName': 'ephemeral0',
    });
    const id = ec2.images['us-east-1']!.find((i) => i.name === 'bare fs')!.imageId;
    const lines = r.stdout.split('\n');
    expect(lines).toContain('Virtualization type: paravirtual (the image is a bare ext2/3/4 file system (no partition table)).');
    expect(lines.indexOf(`IMAGE ${id}`)).toBeGreaterThan(lines.indexOf('Bundle upload completed.'));
    expect(lines.at(-2)).toBe('ec2-bundle-image complete.');
  });

  it('--virtualization-type overrides the detection; without --register the complete register-image command', async () => {
    const r = await bundleImage(fsImage, freshDir('dest-reg-hvm'), ['--bucket', 'reg-forced', '--register', 'forced hvm', '--virtualization-type', 'hvm', ...s3Flags()]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(registers().map((c) => c.params.VirtualizationType)).toEqual(['hvm']);

    ec2.log.length = 0;
    const h = await bundleImage(fsImage, freshDir('dest-hint'), ['--bucket', 'reg-hint', '--description', 'a fs', ...s3Flags()]);
    expect([h.code, h.stderr]).toEqual([0, '']);
    expect(h.stdout.split('\n')).toContain("Register it with: aws ec2 register-image --image-location reg-hint/fs.img.manifest.xml --name NAME --description 'a fs' --architecture x86_64 --virtualization-type paravirtual");
    expect(ec2.log).toEqual([]);
  });

  it('an EC2 error: one line, exit 254, the bundle left in place (and said so)', async () => {
    ec2.deny.add('RegisterImage');
    const dest = freshDir('dest-denied');
    const r = await bundleImage(fsImage, dest, ['--bucket', 'reg-denied', '--register', 'denied', ...s3Flags()]);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: .*UnauthorizedOperation: .*ec2:RegisterImage.*The uploaded bundle is left in place at reg-denied\/fs\.img\.manifest\.xml\n$/);
    expect(r.stdout).not.toContain('IMAGE ');
    expect((await listKeys(checkClient(s3.url), 'reg-denied')).sort()).toEqual(['fs.img.manifest.xml', 'fs.img.part.0']);
    expect(readdirSync(dest)).toEqual(['fs.img.manifest.xml']);
  });

  const unmet = unmetPrerequisite('ec2-bundle-vol --bucket --register', { root: true, commands: ['rsync', 'mke2fs', 'sfdisk', 'grub-mkimage'] })
    ?? (existsSync('/usr/lib/grub/i386-pc/boot.img') ? undefined : 'GRUB 2 i386-pc modules missing in /usr/lib/grub/i386-pc');
  it.skipIf(unmet !== undefined)('ec2-bundle-vol -P mbr (GRUB 2 in the MBR): registered as hvm; the image is local, the parts only in S3', async () => {
    const tree = freshDir('vol');
    mkdirSync(join(tree, 'usr/lib/grub'), { recursive: true });
    mkdirSync(join(tree, 'etc'));
    mkdirSync(join(tree, 'boot'));
    cpSync('/usr/lib/grub/i386-pc', join(tree, 'usr/lib/grub/i386-pc'), { recursive: true });
    writeFileSync(join(tree, 'etc/fstab'), '/dev/sda1 / ext4 defaults 0 1\n');
    const dest = freshDir('dest-vol');
    const r = await runCli('ec2-bundle-vol', ['-v', tree, '-d', dest, '-P', 'mbr', '--no-inherit', '-s', '32', ...KEYS,
      '--bucket', 'reg-vol', '--register', 'volume mbr', ...s3Flags()], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(registers().map((c) => [c.params.ImageLocation, c.params.VirtualizationType, c.params.Architecture])).toEqual([['reg-vol/image.manifest.xml', 'hvm', 'x86_64']]);
    expect(r.stdout).toContain('Virtualization type: hvm (the image is an MBR disk with boot code).');
    expect(r.stdout).toMatch(/^IMAGE ami-[0-9a-f]{17}$/m);
    expect(readdirSync(dest).sort()).toEqual(['image', 'image.manifest.xml']);
    expect((await listKeys(checkClient(s3.url), 'reg-vol')).sort()).toEqual(['image.manifest.xml', 'image.part.0']);
    expect((await downloadAndUnbundle('reg-vol', 'image')).sha1).toBe(sha1File(join(dest, 'image')));
  }, 120_000);
});

describe('memory', () => {
  it('ec2-bundle-image --bucket of a 1 GiB image: peak RSS under 200 MB', async () => {
    const big = join(work.dir, 'big.img');
    // 1 GiB that deflate can't shrink (each MiB a different block of pseudo-random bytes): all of it goes up.
    const block = Buffer.concat([...randomChunks('rss block', MiB)]);
    const fd = openSync(big, 'w');
    try {
      for (let i = 0; i < 1024; i++) {
        block.writeUInt32LE(i, 0);
        writeSync(fd, block);
      }
    } finally {
      closeSync(fd);
    }
    const dest = freshDir('dest-rss');
    const r = await runCliPeakRss('ec2-bundle-image', ['-i', big, '-d', dest, ...KEYS, '--bucket', 'rss-bucket', ...s3Flags(s3.url)], { env: env() });
    expect([r.code, r.stderr]).toEqual([0, '']);
    process.stderr.write(`[rss] ec2-bundle-image --bucket, 1 GiB: ${(r.peakRss / 1e6).toFixed(1)} MB\n`);
    expect(r.peakRss).toBeLessThan(200e6);
    const parts = partEntries(readFileSync(join(dest, 'big.img.manifest.xml'), 'utf8')).map((p) => p.filename);
    expect(parts).toHaveLength(103);
    expect((await listKeys(checkClient(s3.url), 'rss-bucket')).sort()).toEqual([...parts, 'big.img.manifest.xml'].sort());
  }, 600_000);
});
