// ec2-upload-bundle --register and ec2-delete-bundle's AMI check, against s3rver and the EC2 stand-in, reached
// through the SDK's standard endpoint variables (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_EC2).
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { scratch } from '../helpers/bundles.js';
import { makeExt2Image, makeMbrDiskImage } from '../helpers/disk-images.js';
import { startEc2Standin, STANDIN_ACCOUNT, type Ec2Standin } from '../helpers/ec2-standin.js';
import { key } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { checkClient, listKeys } from '../helpers/s3-fixture.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';

const work = scratch('register-cli');
let s3: S3rver;
let ec2: Ec2Standin;
const KERNEL = 'aki-0a1b2c3d';
const RAMDISK = 'ari-4e5f6a7b';
const MAPPING = 'ami=sda1,root=/dev/sda1,ephemeral0=sdb,swap=sda3';
const bundles: Record<'disk' | 'fs', { dir: string; manifest: string; files: string[] }> = {} as never;

/** Both services through the standard variables, credentials from the environment (s3rver takes S3RVER). */
const env = () => ({
  AWS_ENDPOINT_URL_S3: s3.url, AWS_ENDPOINT_URL_EC2: ec2.url, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_PROFILE: 'amitools-test-none', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true',
  AMITOOLS_EC2_ENDPOINT: '', AWS_ENDPOINT_URL: '',
});
const upload = (bundle: keyof typeof bundles, bucket: string, extra: string[], e: NodeJS.ProcessEnv = {}) =>
  runCli('ec2-upload-bundle', ['-b', bucket, '-m', bundles[bundle].manifest, '--batch', ...extra], { env: { ...env(), ...e } });
const registers = () => ec2.log.filter((r) => r.action === 'RegisterImage');

async function bundle(name: 'disk' | 'fs', image: string): Promise<void> {
  const dir = join(work.dir, `${name}-bundle`);
  mkdirSync(dir);
  const r = await runCli('ec2-bundle-image', ['-i', image, '-d', dir, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012',
    '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--kernel', KERNEL, '--ramdisk', RAMDISK, '-B', MAPPING, '--batch']);
  expect(r.code, r.stderr).toBe(0);
  const manifest = readdirSync(dir).find((f) => f.endsWith('.manifest.xml'))!;
  bundles[name] = { dir, manifest: join(dir, manifest), files: readdirSync(dir).sort() };
}

beforeAll(async () => {
  s3 = await startS3rver();
  ec2 = await startEc2Standin({ regions: ['us-east-1', 'eu-west-1'], images: {}, s3: { url: s3.url } });
  // A disk with an MBR and boot code, two parts' worth; a bare ext2 file system in one part.
  makeMbrDiskImage(join(work.dir, 'disk.img'), 16, { dataMiB: 11 });
  makeExt2Image(join(work.dir, 'fs.img'), 4);
  await bundle('disk', join(work.dir, 'disk.img'));
  await bundle('fs', join(work.dir, 'fs.img'));
});
afterAll(async () => {
  await ec2?.close();
  await s3?.stop();
  work.cleanup();
});
beforeEach(() => { ec2.log.length = 0; ec2.deny.clear(); });

describe('ec2-upload-bundle --register', () => {
  it('an MBR disk with boot code, -k given: registers it as hvm with the manifest\'s fields and prints IMAGE ami-…', async () => {
    const r = await upload('disk', 'reg-one/some/prefix', ['--register', 'disk image (1)', '--description', 'from a test', '-k', key('user-key.pem')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(bundles.disk.files.filter((f) => /\.part\./.test(f))).toHaveLength(2);
    const [call, ...more] = registers();
    expect(more).toEqual([]);
    expect(call.region).toBe('us-east-1');
    expect(call.params).toEqual({
      ImageLocation: 'reg-one/some/prefix/disk.img.manifest.xml', Name: 'disk image (1)', Description: 'from a test', Architecture: 'x86_64',
      VirtualizationType: 'hvm', KernelId: KERNEL, RamdiskId: RAMDISK, RootDeviceName: '/dev/sda1',
      'BlockDeviceMapping.1.DeviceName': 'sdb', 'BlockDeviceMapping.1.VirtualName': 'ephemeral0',
    });
    const id = ec2.images['us-east-1']!.find((i) => i.name === 'disk image (1)')!.imageId;
    expect(r.stdout.split('\n')).toContain(`IMAGE ${id}`);
    expect(r.stdout).toContain('Virtualization type: hvm (the image is an MBR disk with boot code).');
    expect(r.stdout.indexOf('Bundle upload completed.')).toBeLessThan(r.stdout.indexOf(`IMAGE ${id}`));
  });

  it('a bare ext2 file system, -k given: paravirtual; --virtualization-type overrides the detection', async () => {
    const r = await upload('fs', 'reg-fs', ['--register', 'fs-image', '-k', key('user-key.pem'), '--region', 'eu-west-1']);
    expect(r.code, r.stderr).toBe(0);
    expect(registers().map((c) => [c.region, c.params.VirtualizationType, c.params.ImageLocation])).toEqual([['eu-west-1', 'paravirtual', 'reg-fs/fs.img.manifest.xml']]);
    expect(r.stdout).toMatch(/^IMAGE ami-[0-9a-f]{17}$/m);

    ec2.log.length = 0;
    const o = await upload('fs', 'reg-fs/again', ['--register', 'fs-as-hvm', '-k', key('user-key.pem'), '--virtualization-type', 'hvm']);
    expect(o.code, o.stderr).toBe(0);
    expect(registers().map((c) => c.params.VirtualizationType)).toEqual(['hvm']);
  });

  it('without -k or --virtualization-type: EC2\'s default, with a one-line notice naming both ways to set it', async () => {
    const r = await upload('disk', 'reg-nokey', ['--register', 'no-key']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('Notice: virtualization type unknown, so EC2 registers the AMI as paravirtual; set it with --virtualization-type hvm|paravirtual, or give -k PRIVATEKEY to detect it from the image.\n');
    expect(registers()).toHaveLength(1);
    expect(registers()[0].params.VirtualizationType).toBeUndefined();
    expect(r.stdout).toMatch(/^IMAGE ami-\S+$/m);
  });

  it('an EC2 error is one line, exit 254, the bundle left in place (and said so); so is a missing permission', async () => {
    const first = await upload('fs', 'reg-dup', ['--register', 'taken', '--virtualization-type', 'paravirtual']);
    expect(first.code).toBe(0);
    const r = await upload('fs', 'reg-dup/second', ['--register', 'taken', '--virtualization-type', 'paravirtual']);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: RegisterImage of reg-dup\/second\/fs\.img\.manifest\.xml in us-east-1 failed: InvalidAMIName\.Duplicate: AMI name taken is already in use by AMI ami-\S+; choose another name, or deregister the image that has it\. The uploaded bundle is left in place at reg-dup\/second\/fs\.img\.manifest\.xml\n$/);
    expect(r.stdout).toContain('Register it with: aws ec2 register-image --image-location reg-dup/second/fs.img.manifest.xml --name taken --architecture x86_64 --virtualization-type paravirtual');
    expect(r.stdout).not.toContain('IMAGE ');
    expect((await listKeys(checkClient(s3.url), 'reg-dup', 'second/')).sort()).toEqual(bundles.fs.files.map((f) => `second/${f}`).sort());

    ec2.deny.add('RegisterImage');
    const d = await upload('fs', 'reg-denied', ['--register', 'denied', '--virtualization-type', 'paravirtual']);
    expect(d.code).toBe(254);
    expect(d.stderr.split('\n')).toHaveLength(2);
    expect(d.stderr).toMatch(/^ERROR: .*UnauthorizedOperation: .*the credentials lack the ec2:RegisterImage permission.*left in place at reg-denied\/fs\.img\.manifest\.xml\n$/);
  });

  it('a name EC2 refuses, or --register with --skipmanifest, stops before anything is uploaded (exit 1)', async () => {
    for (const args of [['--register', 'no;semicolons'], ['--register', 'x'], ['--register', 'fine', '--skipmanifest'], ['--register', 'fine', '--virtualization-type', 'pv']]) {
      const r = await upload('fs', 'reg-refused', args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
    }
    expect(ec2.log).toEqual([]);
    expect(await checkClient(s3.url).send(new CreateBucketCommand({ Bucket: 'reg-refused' })).then(() => 'created')).toBe('created');
  });
});

describe('ec2-upload-bundle without --register: the complete register-image command', () => {
  it('with -k: the detected --virtualization-type, --architecture, kernel, ramdisk, mappings; --region outside us-east-1', async () => {
    const r = await upload('disk', 'hint-one/p', ['-k', key('user-key.pem'), '--region', 'eu-west-1', '--description', 'a disk']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toContain(
      "Register it with: aws ec2 register-image --image-location hint-one/p/disk.img.manifest.xml --name NAME --description 'a disk' --architecture x86_64 " +
      `--virtualization-type hvm --kernel-id ${KERNEL} --ramdisk-id ${RAMDISK} --root-device-name /dev/sda1 --block-device-mappings DeviceName=sdb,VirtualName=ephemeral0 --region eu-west-1`);
    expect(ec2.log).toEqual([]);
  });

  it('without -k: no --virtualization-type, and a line saying how to add it', async () => {
    const r = await upload('fs', 'hint-two', []);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith('Register it with: aws ec2 register-image --image-location hint-two/fs.img.manifest.xml --name NAME --architecture x86_64 --kernel-id'));
    expect(at).toBeGreaterThan(0);
    expect(lines[at]).not.toContain('--virtualization-type');
    expect(lines[at + 1]).toBe('(Virtualization type unknown: EC2 defaults to paravirtual. Add --virtualization-type hvm for a disk image with a boot loader, or give -k PRIVATEKEY to detect it from the image.)');
  });
});

/** The fs bundle's objects under bucket/prefix, put directly (not the code under test); the manifest's location. */
async function place(bucket: string, prefix = ''): Promise<string> {
  const c = checkClient(s3.url);
  await c.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
  for (const f of bundles.fs.files) await c.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${f}`, Body: readFileSync(join(bundles.fs.dir, f)) }));
  return `${bucket}/${prefix}fs.img.manifest.xml`;
}

describe('the standard endpoint variables', () => {
  it('AWS_ENDPOINT_URL alone serves S3 (ec2-download-bundle), the service-specific variable wins over it', async () => {
    await place('endpoints');
    const out = join(work.dir, 'dl');
    mkdirSync(out);
    const r = await runCli('ec2-download-bundle', ['-b', 'endpoints', '-p', 'fs.img', '-d', out, '--batch'],
      { env: { ...env(), AWS_ENDPOINT_URL_S3: '', AWS_ENDPOINT_URL: s3.url } });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(readdirSync(out).sort()).toEqual(bundles.fs.files);
    for (const f of bundles.fs.files) expect(readFileSync(join(out, f)).equals(readFileSync(join(bundles.fs.dir, f)))).toBe(true);
    // The generic variable pointing nowhere does not matter when AWS_ENDPOINT_URL_S3 is set.
    mkdirSync(join(work.dir, 'dl2'));
    const ok = await runCli('ec2-download-bundle', ['-b', 'endpoints', '-p', 'fs.img', '-d', join(work.dir, 'dl2'), '--batch'],
      { env: { ...env(), AWS_ENDPOINT_URL: 'http://127.0.0.1:1' } });
    expect([ok.code, ok.stderr]).toEqual([0, '']);
  });
});

describe('ec2-delete-bundle and the AMIs registered from the bundle', () => {
  function registered(location: string, name: string): string {
    const imageId = `ami-${Buffer.from(name).toString('hex').padEnd(17, '0').slice(0, 17)}`;
    (ec2.images['us-east-1'] ??= []).push({ imageId, location, ownerId: STANDIN_ACCOUNT, type: 'machine', name });
    return imageId;
  }
  const del = (bucket: string, extra: string[], e: NodeJS.ProcessEnv = {}) =>
    runCli('ec2-delete-bundle', ['-b', bucket, '-m', bundles.fs.manifest, '-y', '--batch', ...extra], { env: { ...env(), ...e } });
  const left = (bucket: string) => listKeys(checkClient(s3.url), bucket);

  it('refuses while an AMI points at the bundle, naming it; deletes nothing', async () => {
    const location = await place('del-refuse', 'p/');
    const id = registered(location, 'in use');
    const r = await del('del-refuse/p', []);
    expect(r.code).toBe(254);
    expect(r.stderr).toBe(`ERROR: refusing to delete: AMI ${id} is registered from ${location}: deleting the bundle would leave it unable to launch; deregister it first (--deregister does that), or pass --force to delete anyway\n`);
    expect((await left('del-refuse')).length).toBe(bundles.fs.files.length);
    expect(ec2.log.map((q) => [q.action, q.params])).toEqual([['DescribeImages', { 'Owner.1': 'self', 'Filter.1.Name': 'manifest-location', 'Filter.1.Value.1': location }]]);
  });

  it('--deregister deregisters first (printed), then deletes', async () => {
    const location = await place('del-dereg');
    const id = registered(location, 'to deregister');
    const other = registered('del-dereg/other.img.manifest.xml', 'unrelated');
    const r = await del('del-dereg', ['--deregister']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual(['Deregistering AMIs:', `   - ${id}`, 'Deleting files:']);
    expect(lines.indexOf(`Deregistered ${id}`)).toBeLessThan(lines.findIndex((l) => l.startsWith('Deleted ')));
    expect(ec2.log.map((q) => q.action)).toEqual(['DescribeImages', 'DeregisterImage']);
    expect(ec2.images['us-east-1']!.map((i) => i.imageId)).not.toContain(id);
    expect(ec2.images['us-east-1']!.map((i) => i.imageId)).toContain(other);
    expect(await left('del-dereg')).toEqual([]);
  });

  it('--force deletes, with a warning naming the AMI left unable to launch; -p finds PREFIX.manifest.xml', async () => {
    const location = await place('del-force', 'x/');
    const id = registered(location, 'forced');
    const r = await runCli('ec2-delete-bundle', ['-b', 'del-force/x', '-p', 'fs.img', '-y', '--batch', '--force'], { env: env() });
    expect(r.code).toBe(0);
    // s3rver answers concurrent DELETEs with an occasional 500, which is retried and announced.
    expect(r.stderr.replace(/^Retrying .*\n/gm, '')).toBe(`Deleting the bundle of ${id} anyway: it will no longer launch.\n`);
    expect(ec2.log.map((q) => q.params['Filter.1.Value.1'])).toEqual([location]);
    expect(await left('del-force')).toEqual([]);
    expect(ec2.images['us-east-1']!.map((i) => i.imageId)).toContain(id);
  });

  it('no AMI: deletes as the original; --no-ec2-check asks EC2 nothing and says nothing', async () => {
    await place('del-free');
    const r = await del('del-free', []);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(ec2.log.map((q) => q.action)).toEqual(['DescribeImages']);
    expect(await left('del-free')).toEqual([]);

    ec2.log.length = 0;
    const location = await place('del-nocheck');
    registered(location, 'unchecked');
    const n = await del('del-nocheck', ['--no-ec2-check']);
    expect([n.code, n.stderr]).toEqual([0, '']);
    expect(ec2.log).toEqual([]);
    expect(await left('del-nocheck')).toEqual([]);
  });

  it('when the lookup cannot be made, one warning line and the deletion goes on: no route, no permission, an S3-compatible --url', async () => {
    const closed = await new Promise<number>((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)); }); });
    await place('del-noroute');
    const r = await del('del-noroute', [], { AWS_ENDPOINT_URL_EC2: `http://127.0.0.1:${closed}` });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^Could not check for AMIs registered from del-noroute\/fs\.img\.manifest\.xml \(DescribeImages in us-east-1: .*ECONNREFUSED.*\); deleting without the check\.\n$/);
    expect(await left('del-noroute')).toEqual([]);

    ec2.deny.add('DescribeImages');
    await place('del-denied');
    const d = await del('del-denied', []);
    expect(d.code).toBe(0);
    expect(d.stderr).toMatch(/^Could not check .*UnauthorizedOperation: .*the credentials lack the ec2:DescribeImages permission.*; deleting without the check\.\n$/);
    expect(await left('del-denied')).toEqual([]);

    await place('del-compat');
    const c = await runCli('ec2-delete-bundle', ['-b', 'del-compat', '-m', bundles.fs.manifest, '-y', '--batch', '--url', s3.url],
      { env: { ...env(), AWS_ENDPOINT_URL_S3: '', AWS_ENDPOINT_URL_EC2: '' } });
    expect(c.code).toBe(0);
    expect(c.stderr).toBe(`Not checking for AMIs registered from this bundle: ${s3.url} is an S3-compatible store, not AWS, and no EC2 endpoint is set (AWS_ENDPOINT_URL_EC2).\n`);
    expect(await left('del-compat')).toEqual([]);
  });
});
