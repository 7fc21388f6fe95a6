// Registration: the RegisterImage request built from a manifest, the virtualization type read from the start of a
// bundle, EC2 errors as one line, and the endpoint variables. EC2 is the stand-in (a real HTTP server), S3 is s3rver.
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAwsEndpoint } from '../../src/aws/endpoints.js';
import { configuredEndpoint } from '../../src/aws/config.js';
import { bundleImage } from '../../src/bundle/bundle-image.js';
import { checkRegistration, launchMappings, registerImage, registerImageCommandLine, registerImageInput } from '../../src/bundle/register.js';
import { bundledImageHead, detectBundleVirtualization, detectImageFileVirtualization } from '../../src/bundle/virtualization.js';
import { ec2ClientFactory, endpointFor } from '../../src/ec2/client.js';
import { AmiToolsError, UsageError } from '../../src/errors.js';
import { DETECT_BYTES } from '../../src/format/disk-detect.js';
import { createS3Target } from '../../src/s3/client.js';
import { DirectoryStore } from '../../src/store/directory-store.js';
import { scratch } from '../helpers/bundles.js';
import { makeExt2Image, makeMbrDiskImage } from '../helpers/disk-images.js';
import { REFUSED_KEY, startEc2Standin, STANDIN_ACCOUNT, type Ec2Standin } from '../helpers/ec2-standin.js';
import { key } from '../helpers/paths.js';
import { checkClient } from '../helpers/s3-fixture.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';

const work = scratch('register-unit');
const keys = { userCertPath: key('user-cert.pem'), userKeyPath: key('user-key.pem'), ec2CertPath: key('ec2-cert.pem') };
const MAPPINGS = [{ virtual: 'ami', device: 'sda1' }, { virtual: 'root', device: '/dev/sda1' }, { virtual: 'ephemeral0', device: 'sdb' }, { virtual: 'swap', device: 'sda3' }, { virtual: 'ephemeral1', device: '/dev/sdc' }];

let s3: S3rver;
let ec2: Ec2Standin;
beforeAll(async () => {
  s3 = await startS3rver();
  ec2 = await startEc2Standin({ regions: ['us-east-1', 'eu-west-1'], images: {}, s3: { url: s3.url } });
  await checkClient(s3.url).send(new CreateBucketCommand({ Bucket: 'reg' }));
});
afterAll(async () => {
  await ec2?.close();
  await s3?.stop();
  work.cleanup();
});

describe('the RegisterImage request', () => {
  it('ephemeralN become VirtualName mappings, root the RootDeviceName; ami and swap are not sent', () => {
    expect(launchMappings(MAPPINGS)).toEqual({
      blockDeviceMappings: [{ DeviceName: 'sdb', VirtualName: 'ephemeral0' }, { DeviceName: '/dev/sdc', VirtualName: 'ephemeral1' }],
      rootDeviceName: '/dev/sda1',
    });
    expect(launchMappings([])).toEqual({ blockDeviceMappings: [], rootDeviceName: undefined });
  });

  it('carries location, name, description, the manifest\'s architecture, kernel, ramdisk and mappings, and the type', () => {
    const input = registerImageInput({
      imageLocation: 'b/p/x.img.manifest.xml', name: 'my image (1)', description: "it's mine", virtualizationType: 'hvm',
      manifest: { architecture: 'x86_64', kernelId: 'aki-0123abcd', ramdiskId: 'ari-4567ef01', blockDeviceMappings: MAPPINGS },
    });
    expect(input).toEqual({
      ImageLocation: 'b/p/x.img.manifest.xml', Name: 'my image (1)', Description: "it's mine", Architecture: 'x86_64',
      KernelId: 'aki-0123abcd', RamdiskId: 'ari-4567ef01', RootDeviceName: '/dev/sda1', VirtualizationType: 'hvm',
      BlockDeviceMappings: [{ DeviceName: 'sdb', VirtualName: 'ephemeral0' }, { DeviceName: '/dev/sdc', VirtualName: 'ephemeral1' }],
    });
    expect(registerImageCommandLine(input, 'eu-west-1')).toBe(
      "aws ec2 register-image --image-location b/p/x.img.manifest.xml --name 'my image (1)' --description 'it'\\''s mine' " +
      '--architecture x86_64 --virtualization-type hvm --kernel-id aki-0123abcd --ramdisk-id ari-4567ef01 --root-device-name /dev/sda1 ' +
      '--block-device-mappings DeviceName=sdb,VirtualName=ephemeral0 DeviceName=/dev/sdc,VirtualName=ephemeral1 --region eu-west-1');
    const bare = registerImageInput({ imageLocation: 'b/x.manifest.xml', name: 'NAME', manifest: { architecture: 'i386', blockDeviceMappings: [] } });
    expect(bare).toEqual({ ImageLocation: 'b/x.manifest.xml', Name: 'NAME', Architecture: 'i386' });
    expect(registerImageCommandLine(bare, 'us-east-1')).toBe('aws ec2 register-image --image-location b/x.manifest.xml --name NAME --architecture i386');
  });

  it('refuses names and descriptions EC2 refuses, before anything is sent', () => {
    for (const ok of ['abc', 'a'.repeat(128), "web-1.0 (x86_64) [test] o'k @home/_"]) expect(() => checkRegistration(ok)).not.toThrow();
    for (const bad of ['ab', 'a'.repeat(129), 'semi;colon', 'tab\there', 'ünïcode']) expect(() => checkRegistration(bad)).toThrow(UsageError);
    expect(() => checkRegistration('good name', 'd'.repeat(255))).not.toThrow();
    expect(() => checkRegistration('good name', 'd'.repeat(256))).toThrow(/at most 255/);
  });
});

describe('the virtualization type from the start of a bundle', () => {
  const bundleOf = async (image: string, dir: string) => {
    mkdirSync(dir, { recursive: true });
    const store = new DirectoryStore(dir);
    const r = await bundleImage({ ...keys, image, store, user: '123456789012', arch: 'x86_64' });
    return { manifest: r.manifest, source: store };
  };

  it('an MBR disk with boot code (two parts: part 0 ends inside the gzip stream) is hvm; its head is the image\'s', async () => {
    const image = join(work.dir, 'disk.img');
    makeMbrDiskImage(image, 16, { dataMiB: 11 });
    const b = await bundleOf(image, join(work.dir, 'disk'));
    expect(b.manifest.parts.length).toBe(2);
    expect(await bundledImageHead({ ...b, privateKeyPath: keys.userKeyPath })).toEqual(readFileSync(image).subarray(0, DETECT_BYTES));
    expect(await detectBundleVirtualization({ ...b, privateKeyPath: keys.userKeyPath })).toEqual({ type: 'hvm', reason: 'an MBR disk with boot code' });
    expect((await detectImageFileVirtualization(image)).type).toBe('hvm');
  });

  it('a bare ext2 file system (one part, ending with the cipher padding) is paravirtual', async () => {
    const image = join(work.dir, 'fs.img');
    makeExt2Image(image, 4);
    const b = await bundleOf(image, join(work.dir, 'fs'));
    expect(b.manifest.parts.length).toBe(1);
    expect(await detectBundleVirtualization({ ...b, privateKeyPath: keys.userKeyPath })).toMatchObject({ type: 'paravirtual' });
    expect((await detectImageFileVirtualization(image)).type).toBe('paravirtual');
  });

  it('another key, or a damaged first part, stops it with a clear error', async () => {
    const b = { manifest: (await bundleOf(join(work.dir, 'fs.img'), join(work.dir, 'fs2'))).manifest, source: new DirectoryStore(join(work.dir, 'fs2')) };
    await expect(detectBundleVirtualization({ ...b, privateKeyPath: key('user4096-key.pem') })).rejects.toThrow(/does not match the manifest's user_encrypted_key/);
    const part = join(work.dir, 'fs2', b.manifest.parts[0]!.filename);
    const bytes = readFileSync(part);
    bytes[bytes.length - 1] ^= 1; // past what is decrypted: the part's SHA-1 still catches it
    writeFileSync(part, bytes);
    await expect(detectBundleVirtualization({ ...b, privateKeyPath: keys.userKeyPath })).rejects.toMatchObject({ code: 'PART_DIGEST_MISMATCH' });
  });
});

describe('registerImage against the EC2 stand-in', () => {
  const manifest = { architecture: 'x86_64', blockDeviceMappings: MAPPINGS };
  const putManifest = (k: string) => checkClient(s3.url).send(new PutObjectCommand({ Bucket: 'reg', Key: k, Body: "<?xml version='1.0'?><manifest><architecture>x86_64</architecture></manifest>" }));
  const clients = (accessKey = 'AKIDEXAMPLE') => ec2ClientFactory({ accessKey, secretKey: 'secret', endpoint: ec2.url, attempts: 1 });

  it('registers and answers the new id; the stand-in holds the image as sent', async () => {
    await putManifest('a/one.manifest.xml');
    const r = await registerImage({ clients: clients(), region: 'eu-west-1', imageLocation: 'reg/a/one.manifest.xml', manifest, name: 'one', virtualizationType: 'paravirtual' });
    expect(r.imageId).toMatch(/^ami-[0-9a-f]{17}$/);
    expect(ec2.images['eu-west-1']).toContainEqual(expect.objectContaining({
      imageId: r.imageId, location: 'reg/a/one.manifest.xml', ownerId: STANDIN_ACCOUNT, name: 'one', virtualizationType: 'paravirtual',
      rootDeviceName: '/dev/sda1', blockDeviceMappings: [{ deviceName: 'sdb', virtualName: 'ephemeral0' }, { deviceName: '/dev/sdc', virtualName: 'ephemeral1' }],
    }));
  });

  it('EC2 errors are one line with the code and what to do: no manifest, a taken name, refused credentials, no permission', async () => {
    const attempt = (o: { name: string; location?: string; accessKey?: string }) =>
      registerImage({ clients: clients(o.accessKey), region: 'eu-west-1', imageLocation: o.location ?? 'reg/a/one.manifest.xml', manifest, name: o.name })
        .then(() => { throw new Error('registered'); }, (e: AmiToolsError) => e);
    const missing = await attempt({ name: 'two', location: 'reg/a/none.manifest.xml' });
    expect(missing.message).toMatch(/^RegisterImage of reg\/a\/none\.manifest\.xml in eu-west-1 failed: InvalidManifest: .*; EC2 cannot read the manifest/);
    const taken = await attempt({ name: 'one' });
    expect(taken.message).toMatch(/InvalidAMIName\.Duplicate: AMI name one is already in use by AMI ami-\S+; choose another name/);
    expect(taken.code).toBe('EC2_ERROR');
    const refused = await attempt({ name: 'three', accessKey: REFUSED_KEY });
    expect(refused.message).toMatch(/AuthFailure: .*; check the credentials/);
    expect(refused.code).toBe('EC2_ACCESS_DENIED');
    ec2.deny.add('RegisterImage');
    try {
      const denied = await attempt({ name: 'four' });
      expect(denied.message).toMatch(/UnauthorizedOperation: .*; the credentials lack the ec2:RegisterImage permission/);
      expect(denied.code).toBe('EC2_ACCESS_DENIED');
    } finally {
      ec2.deny.clear();
    }
    for (const e of [missing, taken, refused]) expect(e.message).not.toContain('\n');
  });
});

describe('endpoints from the SDK\'s standard variables', () => {
  it('AWS_ENDPOINT_URL_<SERVICE> wins over AWS_ENDPOINT_URL; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns both off', () => {
    expect(configuredEndpoint('s3', undefined, { AWS_ENDPOINT_URL: 'http://all', AWS_ENDPOINT_URL_S3: 'http://s3' })?.value).toBe('http://s3');
    expect(configuredEndpoint('ec2', undefined, { AWS_ENDPOINT_URL: 'http://all', AWS_ENDPOINT_URL_S3: 'http://s3' })?.value).toBe('http://all');
    expect(configuredEndpoint('ec2', undefined, { AWS_ENDPOINT_URL: 'http://all', AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })).toBeUndefined();
    expect(configuredEndpoint('ec2', undefined, {})).toBeUndefined();
  });

  it('EC2: the flag, then AMITOOLS_EC2_ENDPOINT, the region@url variable, then AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL', () => {
    const env = { AWS_ENDPOINT_URL_EC2: 'http://ec2', AWS_ENDPOINT_URL: 'http://all' };
    expect(endpointFor('eu-west-1', { env: { ...env, AMITOOLS_EC2_ENDPOINT: 'http://ours' } })).toBe('http://ours');
    expect(endpointFor('eu-west-1', { env: { ...env, AMITOOLS_EC2_REGION_ENDPOINT: 'eu-west-1@ec2.example.com' } })).toBe('https://ec2.example.com');
    expect(endpointFor('eu-west-1', { env })).toBe('http://ec2');
    expect(endpointFor('eu-west-1', { env: { AWS_ENDPOINT_URL: 'http://all' } })).toBe('http://all');
  });

  it('S3: --url, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, with the addressing an IP endpoint needs', () => {
    const env = { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000/', AWS_ACCESS_KEY_ID: 'A', AWS_SECRET_ACCESS_KEY: 'S' };
    const t = createS3Target({ bucket: 'dns-safe' }, { env });
    expect([t.endpoint, t.pathStyle]).toEqual(['http://127.0.0.1:9000', true]);
    expect(createS3Target({ bucket: 'dns-safe', endpoint: 'https://s3.eu-west-1.amazonaws.com' }, { env }).endpoint).toBe('https://s3.eu-west-1.amazonaws.com');
    expect(createS3Target({ bucket: 'dns-safe' }, { env: { AWS_ENDPOINT_URL: 'http://localhost:1' } }).endpoint).toBe('http://localhost:1');
    expect(() => createS3Target({ bucket: 'b' }, { env: { AWS_ENDPOINT_URL_S3: 'ftp://x' } })).toThrow(/AWS_ENDPOINT_URL_S3/);
    expect([isAwsEndpoint('https://s3.amazonaws.com'), isAwsEndpoint('https://ec2.cn-north-1.amazonaws.com.cn'), isAwsEndpoint('http://127.0.0.1:9000'), isAwsEndpoint('https://minio.example.com')])
      .toEqual([true, true, false, false]);
  });

  it('a client made without an endpoint sends to AWS_ENDPOINT_URL_EC2 (the stand-in)', async () => {
    const before = ec2.log.length;
    const factory = ec2ClientFactory({ accessKey: 'AKIDEXAMPLE', secretKey: 's', env: { AWS_ENDPOINT_URL_EC2: ec2.url }, attempts: 1 });
    const { describeAllImages } = await import('../../src/ec2/images.js');
    expect(await describeAllImages(factory('us-east-1'), { Owners: ['self'] })).toEqual([]);
    expect(ec2.log.slice(before).map((r) => r.action)).toEqual(['DescribeImages']);
  });
});
