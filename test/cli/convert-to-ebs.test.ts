// ec2-convert-to-ebs against s3rver, the EBS stand-in and the EC2 stand-in (reached through AWS_ENDPOINT_URL_S3,
// _EBS and _EC2): snapshots written block by block and read back from the stand-in's recording, devices (a file, a
// loop device), the fstab edit checked with debugfs and e2fsck, faults, and dry runs.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { scratch } from '../helpers/bundles.js';
import { blankFile, writeRandom } from '../helpers/disk-images.js';
import { readHead, startEbsStandin, type EbsStandin } from '../helpers/ebs-standin.js';
import { startEc2Standin, type Ec2Standin } from '../helpers/ec2-standin.js';
import { key } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { ExtImage, fsck } from '../helpers/volume-debugfs.js';

const work = scratch('convert-ebs');
let s3: S3rver;
let ec2: Ec2Standin;
let ebs: EbsStandin;
const KERNEL = 'aki-0a1b2c3d';
const RAMDISK = 'ari-4e5f6a7b';
const MiB = 1 << 20;
const PART_OFFSET = MiB;
const FSTAB = [
  '# /etc/fstab: static file system information.',
  'LABEL=root / ext4 defaults,discard 0 1',
  '/dev/sdb /media/ephemeral0 auto defaults,comment=cloudconfig 0 2',
  '/dev/xvdc1 /data ext3 defaults,nofail 0 0',
  '/dev/sda3 none swap sw 0 0',
  'proc /proc proc defaults 0 0',
  '',
].join('\n');
const KEPT = ['# /etc/fstab: static file system information.', 'LABEL=root / ext4 defaults,discard 0 1', 'proc /proc proc defaults 0 0', ''].join('\n');
const REMOVED = FSTAB.split('\n').filter((l) => !KEPT.split('\n').includes(l));

interface Bundle { dir: string; manifest: string; image: string; bucket: string }
const bundles: Record<'fs' | 'disk', Bundle> = {} as never;

const env = () => ({
  AWS_ENDPOINT_URL_S3: s3.url, AWS_ENDPOINT_URL_EC2: ec2.url, AWS_ENDPOINT_URL_EBS: ebs.url, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_PROFILE: 'amitools-test-none', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true',
  AMITOOLS_EC2_ENDPOINT: '', AWS_ENDPOINT_URL: '', AWS_REGION: '', AWS_DEFAULT_REGION: '',
});
const convert = (args: string[], e: NodeJS.ProcessEnv = {}) => runCli('ec2-convert-to-ebs', ['-k', key('user-key.pem'), '--batch', ...args], { env: { ...env(), ...e } });
const local = (b: Bundle) => ['-m', b.manifest, '-s', b.dir];
const remote = (b: Bundle) => ['-b', b.bucket, '-m', 'image.img.manifest.xml'];

/** An ext4 filesystem made by mke2fs from a tree holding /etc/fstab and some files, at `offset` of `image`. */
function makeFilesystem(image: string, offset: number, sizeMiB: number, dataMiB: number): void {
  const tree = join(work.dir, `tree-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'fstab'), FSTAB, { mode: 0o644 });
  writeFileSync(join(tree, 'etc', 'hostname'), 'converted\n');
  if (dataMiB) {
    blankFile(join(tree, 'data.bin'), dataMiB * MiB);
    writeRandom(join(tree, 'data.bin'), 0, dataMiB * MiB, `data ${offset}`);
  }
  execFileSync('mke2fs', ['-F', '-q', '-t', 'ext4', '-d', tree, '-E', `offset=${offset}`, '-U', '6d1f5b0e-2c3a-4b5c-9d8e-0f1a2b3c4d5e', image, `${sizeMiB}M`],
    { env: { ...process.env, E2FSPROGS_FAKE_TIME: '1700000000' }, stdio: 'pipe' });
}

async function bundle(name: 'fs' | 'disk', image: string): Promise<void> {
  const dir = join(work.dir, `${name}-bundle`);
  mkdirSync(dir);
  const r = await runCli('ec2-bundle-image', ['-i', image, '-d', dir, '-p', 'image.img', '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012',
    '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--kernel', KERNEL, '--ramdisk', RAMDISK, '-B', 'ami=sda1,root=/dev/sda1,ephemeral0=sdb,swap=sda3', '--batch']);
  expect(r.code, r.stderr).toBe(0);
  const bucket = `convert-${name}`;
  const u = await runCli('ec2-upload-bundle', ['-b', bucket, '-m', join(dir, 'image.img.manifest.xml'), '--batch'], { env: env() });
  expect(u.code, u.stderr).toBe(0);
  bundles[name] = { dir, manifest: join(dir, 'image.img.manifest.xml'), image, bucket };
}

/** What ec2-unbundle makes of the bundle: the oracle for every byte outside the fstab edit. */
async function unbundled(b: Bundle): Promise<Buffer> {
  const out = join(work.dir, `unbundled-${Date.now()}`);
  mkdirSync(out);
  const r = await runCli('ec2-unbundle', ['-k', key('user-key.pem'), '-m', b.manifest, '-s', b.dir, '-d', out, '--batch']);
  expect(r.code, r.stderr).toBe(0);
  return readFileSync(join(out, 'image.img'));
}

/** The 4 KiB blocks in which two equally long images differ. */
function differingBlocks(a: Buffer, b: Buffer): number[] {
  expect(a.length).toBe(b.length);
  const out: number[] = [];
  for (let i = 0; i < a.length; i += 4096) if (!a.subarray(i, i + 4096).equals(b.subarray(i, i + 4096))) out.push(i / 4096);
  return out;
}

/** The fstab edit as it must be: the instance-store lines gone, the old file beside it, the filesystem clean. */
function expectFstabEdited(image: string, offset: number): void {
  const fs = new ExtImage(image, offset);
  expect(fs.cat('/etc/fstab').toString()).toBe(KEPT);
  expect(fs.cat('/etc/fstab.orig').toString()).toBe(FSTAB);
  expect(fs.stat('/etc/fstab')).toMatchObject({ type: 'regular', mode: 0o644, uid: 0, gid: 0, links: 1 });
  expect(fs.stat('/etc/fstab.orig')).toMatchObject({ links: 1 });
  expect(fs.cat('/etc/hostname').toString()).toBe('converted\n');
  const check = fsck(image, offset);
  expect(check.code, check.output).toBe(0);
}

/** The disk the snapshot holds, as the stand-in recorded its blocks: `length` bytes, in a file. */
function recordedDisk(snapshotId: string, length: number): string {
  const snap = ec2.snapshots.get(snapshotId);
  expect(snap, `no snapshot ${snapshotId}`).toBeDefined();
  const path = join(work.dir, `${snapshotId}.img`);
  writeFileSync(path, readHead(snap!.path, length));
  return path;
}

const lineValue = (stdout: string, tag: string) => new RegExp(`^${tag} (\\S+)$`, 'm').exec(stdout)?.[1];
const mutating = () => [...ebs.log.map((c) => c.action), ...ec2.log.map((c) => c.action)].filter((a) => !/^Describe/.test(a));

beforeAll(async () => {
  s3 = await startS3rver();
  ec2 = await startEc2Standin({ regions: ['us-east-1', 'eu-west-1'], images: {} });
  ebs = await startEbsStandin(ec2);
  // A bare ext4 filesystem; an MBR disk with boot code and an ext4 partition at 1 MiB, two parts' worth of data.
  const fsImage = join(work.dir, 'fs.img');
  blankFile(fsImage, 8 * MiB);
  makeFilesystem(fsImage, 0, 8, 1);
  const diskImage = join(work.dir, 'disk.img');
  blankFile(diskImage, 40 * MiB);
  execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', diskImage], { input: 'label: dos\nunit: sectors\n\nstart=2048, type=83, bootable\n', stdio: ['pipe', 'pipe', 'pipe'] });
  writeRandom(diskImage, 0, 440, 'boot code');
  makeFilesystem(diskImage, PART_OFFSET, 39, 14);
  await bundle('fs', fsImage);
  await bundle('disk', diskImage);
}, 300_000);
afterAll(async () => {
  await ebs?.close();
  await ec2?.close();
  await s3?.stop();
  work.cleanup();
});
beforeEach(() => { ebs.log.length = 0; ebs.fault = undefined; ec2.log.length = 0; ec2.deny.clear(); });

describe('ec2-convert-to-ebs --snapshot', () => {
  it('a bare filesystem from S3: paravirtual with the manifest\'s kernel and ramdisk, fstab edited, SNAPSHOT and IMAGE printed', async () => {
    const r = await convert([...remote(bundles.fs), '--snapshot', '--register', 'bare fs', '--description', 'converted', '--tag', 'Name=bare', '--tag', 'team=x=y']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const snapshotId = lineValue(r.stdout, 'SNAPSHOT')!;
    const imageId = lineValue(r.stdout, 'IMAGE')!;
    expect(snapshotId).toMatch(/^snap-/);
    expect(imageId).toMatch(/^ami-/);
    for (const line of REMOVED) expect(r.stdout).toContain(`Removed from /etc/fstab: ${line}`);
    expect(r.stdout).toContain('The old /etc/fstab is kept in the image as /etc/fstab.orig.');
    const snap = ec2.snapshots.get(snapshotId)!;
    expect(snap).toMatchObject({ volumeSizeGiB: 1, state: 'completed', description: 'converted', tags: [{ Key: 'Name', Value: 'bare' }, { Key: 'team', Value: 'x=y' }] });
    const register = ec2.log.filter((c) => c.action === 'RegisterImage');
    expect(register.map((c) => c.params)).toEqual([{
      Name: 'bare fs', Description: 'converted', Architecture: 'x86_64', RootDeviceName: '/dev/sda1', VirtualizationType: 'paravirtual',
      KernelId: KERNEL, RamdiskId: RAMDISK, 'BlockDeviceMapping.1.DeviceName': '/dev/sda1', 'BlockDeviceMapping.1.Ebs.SnapshotId': snapshotId,
      'BlockDeviceMapping.1.Ebs.DeleteOnTermination': 'true', 'BlockDeviceMapping.1.Ebs.VolumeType': 'gp3',
    }]);
    // The recorded blocks are the unbundled image apart from the fstab edit.
    const original = await unbundled(bundles.fs);
    const disk = recordedDisk(snapshotId, original.length);
    expectFstabEdited(disk, 0);
    expect(differingBlocks(readFileSync(disk), original).length).toBeLessThan(12);
    // Every block written was checked: the LINEAR aggregate and the count matched at completion.
    const complete = ebs.log.find((c) => c.action === 'CompleteSnapshot')!;
    expect(complete.status).toBe(202);
    expect(Number(complete.headers['x-amz-changedblockscount'])).toBe(snap.blocks.size);
    // Unwritten blocks are zeros in the image: only blocks with data were sent.
    for (let i = 0; i < original.length / (512 * 1024); i++) {
      const zero = original.subarray(i * 524288, (i + 1) * 524288).every((b) => b === 0);
      if (zero) expect(snap.blocks.has(i), `block ${i}`).toBe(false);
    }
  });

  it('an MBR disk with --keep-fstab: straight to the snapshot, exactly the unbundled bytes, hvm with /dev/xvda and no kernel', async () => {
    const r = await convert([...local(bundles.disk), '--snapshot', '--keep-fstab', '--register', 'disk-hvm', '--ena-support', '--size', '3', '--concurrency', '4']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const snapshotId = lineValue(r.stdout, 'SNAPSHOT')!;
    expect(r.stdout).not.toContain('fstab');
    expect(ec2.snapshots.get(snapshotId)!.volumeSizeGiB).toBe(3);
    const original = await unbundled(bundles.disk);
    expect(readHead(ec2.snapshots.get(snapshotId)!.path, original.length).equals(original)).toBe(true);
    expect(ec2.log.find((c) => c.action === 'RegisterImage')!.params).toEqual({
      Name: 'disk-hvm', Architecture: 'x86_64', RootDeviceName: '/dev/xvda', VirtualizationType: 'hvm', EnaSupport: 'true',
      'BlockDeviceMapping.1.DeviceName': '/dev/xvda', 'BlockDeviceMapping.1.Ebs.SnapshotId': snapshotId,
      'BlockDeviceMapping.1.Ebs.DeleteOnTermination': 'true', 'BlockDeviceMapping.1.Ebs.VolumeType': 'gp3',
    });
    expect(ebs.maxInFlight).toBeLessThanOrEqual(4 + 1);
  });

  it('throttling and 500s on a third of the blocks: retried, and the snapshot completes with every block checked', async () => {
    ebs.fault = ({ blockIndex, attempt }) => (blockIndex % 3 === 0 && attempt === 1 ? (blockIndex % 2 ? 'throttle' : 'internal') : undefined);
    const r = await convert([...remote(bundles.disk), '--snapshot']);
    expect(r.code, r.stderr).toBe(0);
    const retries = r.stderr.split('\n').filter(Boolean);
    expect(retries.length).toBeGreaterThan(3);
    expect(retries.every((l) => /^Retrying PutSnapshotBlockCommand in us-east-1 in \d+\.\ds \(attempt 2 of 6\): HTTP (400 ThrottlingException|500 InternalServerException)$/.test(l)), retries.join('\n')).toBe(true);
    const puts = ebs.log.filter((c) => c.action === 'PutSnapshotBlock');
    expect(puts.some((c) => c.error === 'ThrottlingException')).toBe(true);
    expect(puts.some((c) => c.error === 'InternalServerException')).toBe(true);
    const snapshotId = lineValue(r.stdout, 'SNAPSHOT')!;
    const original = await unbundled(bundles.disk);
    expectFstabEdited(recordedDisk(snapshotId, original.length), PART_OFFSET);
    expect(ebs.log.find((c) => c.action === 'CompleteSnapshot')!.status).toBe(202);
  });

  it('endless faults: the snapshot is deleted, one line, exit 254; --keep-partial leaves it', async () => {
    ebs.fault = () => 'internal';
    const r = await convert([...local(bundles.fs), '--snapshot', '--keep-fstab', '--register', 'never']);
    expect(r.code).toBe(254);
    const errors = r.stderr.split('\n').filter((l) => l && !l.startsWith('Retrying '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^ERROR: PutSnapshotBlock of block \d+ of (snap-\S+) failed: InternalServerException: An internal error occurred; the incomplete snapshot \1 was deleted$/);
    const id = /of (snap-\S+) failed/.exec(errors[0]!)![1]!;
    expect(ec2.snapshots.has(id)).toBe(false);
    expect(ec2.log.map((c) => c.action)).toEqual(['DeleteSnapshot']);
    expect(ebs.log.some((c) => c.action === 'CompleteSnapshot')).toBe(false);
    expect(r.stdout).not.toMatch(/^(SNAPSHOT|IMAGE) /m);

    const k = await convert([...local(bundles.fs), '--snapshot', '--keep-fstab', '--keep-partial']);
    expect(k.code).toBe(254);
    const kept = /the incomplete snapshot (snap-\S+) is left in place, as asked: do not use it$/m.exec(k.stderr)?.[1];
    expect(kept, k.stderr).toBeDefined();
    expect(ec2.snapshots.has(kept!)).toBe(true);
  });

  it('a bad part digest stops before CompleteSnapshot and deletes the snapshot', async () => {
    const dir = join(work.dir, 'bad-part');
    mkdirSync(dir);
    for (const f of readdirSync(bundles.disk.dir)) copyFileSync(join(bundles.disk.dir, f), join(dir, f));
    const part = readdirSync(dir).find((f) => f.endsWith('.part.1'))!;
    const fd = openSync(join(dir, part), 'r+');
    writeSync(fd, Buffer.from([0x42]), 0, 1, 1000);
    closeSync(fd);
    const r = await convert(['-m', join(dir, 'image.img.manifest.xml'), '-s', dir, '--snapshot', '--keep-fstab']);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(new RegExp(`^ERROR: .*${part.replace(/\./g, '\\.')}.*; the incomplete snapshot snap-\\S+ was deleted\\n$`));
    expect(ebs.log.filter((c) => c.action === 'StartSnapshot')).toHaveLength(1);
    expect(ebs.log.some((c) => c.action === 'CompleteSnapshot')).toBe(false);
    expect(ec2.log.map((c) => c.action)).toEqual(['DeleteSnapshot']);
    expect([...ec2.snapshots.values()].filter((s) => s.snapshotId === ebs.log[0]!.snapshotId)).toEqual([]);
    // With the fstab edit the image is staged first: the bad part stops it before any snapshot exists.
    ebs.log.length = 0;
    const s = await convert(['-m', join(dir, 'image.img.manifest.xml'), '-s', dir, '--snapshot']);
    expect(s.code).toBe(254);
    expect(s.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(ebs.log).toEqual([]);
  });

  it('--region and --output json: the snapshot and the AMI in that region, one JSON document on stdout', async () => {
    const r = await convert([...local(bundles.fs), '--snapshot', '--region', 'eu-west-1', '--register', 'in eu', '--output', 'json']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      command: 'ec2-convert-to-ebs', region: 'eu-west-1', dryRun: false, imageSize: 8 * MiB, snapshotSizeGiB: 1, virtualizationType: 'paravirtual',
      fstab: { status: 'edited', removed: REMOVED, original: '/etc/fstab.orig' },
      registerImage: { Name: 'in eu', RootDeviceName: '/dev/sda1', KernelId: KERNEL, RamdiskId: RAMDISK },
    });
    expect(doc.stagedBytes).toBeGreaterThan(0);
    expect(doc.stagedBytes).toBeLessThanOrEqual(8 * MiB);
    expect(ec2.snapshots.get(doc.snapshotId)!.region).toBe('eu-west-1');
    expect(ec2.images['eu-west-1']!.map((i) => i.imageId)).toContain(doc.imageId);
    expect(ec2.log.every((c) => c.region === 'eu-west-1')).toBe(true);
  });

  it('--dry-run writes nothing and calls no mutating API: the plan is printed', async () => {
    const device = join(work.dir, 'dry-device.img');
    const r = await convert([...remote(bundles.disk), '--snapshot', '--register', 'dry', '--dry-run']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(mutating()).toEqual([]);
    expect(ebs.log).toEqual([]);
    expect(r.stdout).toContain('Snapshot: 1 GiB');
    expect(r.stdout).toContain('Virtualization type: hvm (the image is an MBR disk with boot code)');
    for (const line of REMOVED) expect(r.stdout).toContain(`Would remove from /etc/fstab: ${line}`);
    expect(r.stdout).toContain("Would register: aws ec2 register-image --name dry --architecture x86_64 --virtualization-type hvm --root-device-name /dev/xvda --block-device-mappings 'DeviceName=/dev/xvda,Ebs={SnapshotId=snap-(to be created),DeleteOnTermination=true,VolumeType=gp3}'");
    expect(r.stdout).toContain('Dry run: nothing was written.');
    expect(r.stdout).not.toMatch(/^(SNAPSHOT|IMAGE) /m);

    const d = await convert([...local(bundles.fs), '--device', device, '--dry-run', '--output', 'json']);
    expect([d.code, d.stderr]).toEqual([0, '']);
    expect(existsSync(device)).toBe(false);
    expect(mutating()).toEqual([]);
    const doc = JSON.parse(d.stdout);
    expect(doc).toMatchObject({ command: 'ec2-convert-to-ebs', dryRun: true, virtualizationType: 'paravirtual', fstab: { status: 'planned', removed: REMOVED, original: '/etc/fstab.orig' } });
  });
});

describe('ec2-convert-to-ebs --device', () => {
  it('to a file: the unbundled image apart from the fstab edit; --keep-fstab: exactly the unbundled bytes', async () => {
    const original = await unbundled(bundles.disk);
    const edited = join(work.dir, 'device-edited.img');
    const r = await convert([...local(bundles.disk), '--device', edited]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).not.toMatch(/^(SNAPSHOT|IMAGE) /m);
    expectFstabEdited(edited, PART_OFFSET);
    const differ = differingBlocks(readFileSync(edited), original);
    expect(differ.length).toBeGreaterThan(0);
    expect(differ.length).toBeLessThan(12);
    expect(differ.every((b) => b * 4096 >= PART_OFFSET)).toBe(true);
    expect(ebs.log).toEqual([]);
    expect(ec2.log).toEqual([]);

    const kept = join(work.dir, 'device-kept.img');
    const k = await convert([...local(bundles.disk), '--device', kept, '--keep-fstab']);
    expect([k.code, k.stderr]).toEqual([0, '']);
    expect(readFileSync(kept).equals(original)).toBe(true);
  });

  it('to a loop device, then --volume-id: CreateSnapshot of the volume, waited for, and registered', async (ctx) => {
    const reason = process.getuid?.() !== 0 ? 'loop devices need root' : spawnSync('losetup', ['--version']).status !== 0 ? 'losetup is not installed' : undefined;
    const backing = join(work.dir, 'loop-backing.img');
    blankFile(backing, 48 * MiB);
    let dev: string | undefined;
    if (!reason) {
      const l = spawnSync('losetup', ['--find', '--show', backing], { encoding: 'utf8' });
      if (l.status === 0) dev = l.stdout.trim();
      else process.stderr.write(`[skipped] loop device: losetup failed here: ${l.stderr.trim()}\n`);
    } else {
      process.stderr.write(`[skipped] loop device: ${reason}\n`);
    }
    if (!dev) return ctx.skip();
    try {
      const original = await unbundled(bundles.disk);
      const k = await convert([...local(bundles.disk), '--device', dev, '--keep-fstab']);
      expect([k.code, k.stderr]).toEqual([0, '']);
      expect(readHead(backing, original.length).equals(original)).toBe(true);

      ec2.volumes.set('vol-0123456789abcdef0', { sizeGiB: 1, path: backing });
      const r = await convert([...local(bundles.disk), '--device', dev, '--volume-id', 'vol-0123456789abcdef0', '--register', 'from-volume', '--tag', 'k=v']);
      expect([r.code, r.stderr]).toEqual([0, '']);
      const snapshotId = lineValue(r.stdout, 'SNAPSHOT')!;
      expect(lineValue(r.stdout, 'IMAGE')).toMatch(/^ami-/);
      expect(ec2.log.map((c) => c.action).filter((a) => a !== 'DescribeSnapshots')).toEqual(['CreateSnapshot', 'RegisterImage']);
      expect(ec2.log.filter((c) => c.action === 'DescribeSnapshots').length).toBeGreaterThanOrEqual(3);
      expect(ec2.log[0]!.params).toEqual({ VolumeId: 'vol-0123456789abcdef0', 'TagSpecification.1.ResourceType': 'snapshot', 'TagSpecification.1.Tag.1.Key': 'k', 'TagSpecification.1.Tag.1.Value': 'v' });
      const disk = recordedDisk(snapshotId, original.length);
      expectFstabEdited(disk, PART_OFFSET);
      expect(differingBlocks(readFileSync(disk), original).every((b) => b * 4096 >= PART_OFFSET)).toBe(true);
    } finally {
      spawnSync('losetup', ['-d', dev]);
    }
  });
});

describe('ec2-convert-to-ebs: flags', () => {
  it('refuses what cannot work before reading anything (exit 1)', async () => {
    const cases: [string[], RegExp][] = [
      [[...local(bundles.fs)], /--snapshot .* or --device PATH/],
      [[...local(bundles.fs), '--snapshot', '--device', '/dev/null'], /--snapshot .* or --device PATH/],
      [[...local(bundles.fs), '--device', join(work.dir, 'x.img'), '--register', 'x y z'], /--register needs a snapshot/],
      [[...local(bundles.fs), '--snapshot', '--kms-key-id', 'arn:aws:kms:us-east-1:1:key/x'], /--kms-key-id needs --encrypted/],
      [[...local(bundles.fs), '--snapshot', '--volume-id', 'vol-12345678'], /--volume-id applies to --device only/],
      [[...local(bundles.fs), '--device', join(work.dir, 'y.img'), '--size', '4'], /--size applies to --snapshot only/],
      [[...local(bundles.fs), '--snapshot', '--register', 'ok name', '--volume-type', 'st1'], /--volume-type has invalid value 'st1'/],
      [[...local(bundles.fs), '--snapshot', '--tag', 'novalue'], /--tag has invalid value 'novalue'/],
      [[...local(bundles.fs), '--snapshot', '--register', 'x'], /the image name 'x' is not one EC2 accepts/],
      [[...local(bundles.fs), '--snapshot', '--url', 'http://127.0.0.1:1'], /--url is for a bundle in S3/],
    ];
    for (const [args, message] of cases) {
      const r = await convert(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(mutating()).toEqual([]);
    expect(ebs.log).toEqual([]);
  });
});
