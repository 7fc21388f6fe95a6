import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ec2ClientFactory, endpointFor } from '../../src/ec2/client.js';
import { locationKey, mapKernelAndRamdisk } from '../../src/ec2/mapping.js';
import { REFUSED_KEY, startEc2Standin, type Ec2Standin, type StandinImage } from '../helpers/ec2-standin.js';

// Recorded-shape data: Amazon's pv-grub kernels and an initrd, one bucket per region, plus decoys that must not match.
const AMAZON = '137112412989';
const FEDORA = '206029621532';
export const WORLD: { regions: string[]; images: Record<string, StandinImage[]> } = {
  regions: ['us-east-1', 'us-west-2', 'eu-west-1'],
  images: {
    'us-east-1': [
      { imageId: 'aki-919dcaf8', type: 'kernel', ownerId: AMAZON, ownerAlias: 'amazon', location: 'ec2-public-images/pv-grub-hd0_1.04-x86_64.gz.manifest.xml' },
      { imageId: 'aki-88aa75e1', type: 'kernel', ownerId: AMAZON, ownerAlias: 'amazon', location: 'ec2-public-images/pv-grub-hd00_1.04-x86_64.gz.manifest.xml' },
      { imageId: 'ari-a51cf9cc', type: 'ramdisk', ownerId: FEDORA, location: 'ec2-public-images/initrd-2.6.21.7-2.fc8xen.x86_64.manifest.xml' },
    ],
    'us-west-2': [
      { imageId: 'aki-fc8f11cc', type: 'kernel', ownerId: AMAZON, ownerAlias: 'amazon', location: 'ec2-public-images-us-west-2/pv-grub-hd0_1.04-x86_64.gz.manifest.xml' },
    ],
    'eu-west-1': [
      // Same key, other owner; same owner and key, other type: neither may be chosen.
      { imageId: 'aki-0000dec0', type: 'kernel', ownerId: '999988887777', location: 'someone-else/pv-grub-hd0_1.04-x86_64.gz.manifest.xml' },
      { imageId: 'ari-0000dec1', type: 'ramdisk', ownerId: AMAZON, location: 'ec2-public-images-eu/pv-grub-hd0_1.04-x86_64.gz.manifest.xml' },
      { imageId: 'aki-64695810', type: 'kernel', ownerId: AMAZON, ownerAlias: 'amazon', location: 'ec2-public-images-eu/pv-grub-hd00_1.04-x86_64.gz.manifest.xml' },
      { imageId: 'aki-52a34525', type: 'kernel', ownerId: AMAZON, ownerAlias: 'amazon', location: 'ec2-public-images-eu/pv-grub-hd0_1.04-x86_64.gz.manifest.xml' },
      { imageId: 'ari-7cb0560b', type: 'ramdisk', ownerId: FEDORA, location: 'ec2-public-images-eu/initrd-2.6.21.7-2.fc8xen.x86_64.manifest.xml' },
    ],
  },
};

let ec2: Ec2Standin;
beforeAll(async () => { ec2 = await startEc2Standin(WORLD); });
afterAll(async () => { await ec2.close(); });

const clients = () => ec2ClientFactory({ accessKey: 'AKIDEXAMPLE', secretKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', endpoint: ec2.url });
const calls = () => ec2.log.splice(0).map((r) => `${r.region} ${r.action} ${Object.entries(r.params).map(([k, v]) => `${k}=${v}`).join(' ')}`.trim());

describe('kernel/ramdisk mapping against the EC2 stand-in', () => {
  it('maps kernel and ramdisk on owner, type and location without bucket', async () => {
    const r = await mapKernelAndRamdisk({ clients: clients(), targetRegion: 'eu-west-1', manifestKernelId: 'aki-919dcaf8', manifestRamdiskId: 'ari-a51cf9cc' });
    expect(r).toEqual({ kernelId: 'aki-52a34525', ramdiskId: 'ari-7cb0560b', missingInTarget: [] });
    expect(calls()).toEqual([
      'eu-west-1 DescribeRegions',
      'us-east-1 DescribeImages ImageId.1=aki-919dcaf8 ImageId.2=ari-a51cf9cc',
      `eu-west-1 DescribeImages Owner.1=${AMAZON} Owner.2=${FEDORA}`,
    ]);
  });

  it('looks in the next regions when the first does not know the ids', async () => {
    const r = await mapKernelAndRamdisk({ clients: clients(), targetRegion: 'us-east-1', manifestKernelId: 'aki-52a34525', manifestRamdiskId: 'ari-7cb0560b' });
    expect(r).toEqual({ kernelId: 'aki-919dcaf8', ramdiskId: 'ari-a51cf9cc', missingInTarget: [] });
    expect(calls()).toEqual([
      'us-east-1 DescribeRegions',
      'us-east-1 DescribeImages ImageId.1=aki-52a34525 ImageId.2=ari-7cb0560b',
      'us-east-1 DescribeImages ImageId.1=aki-52a34525',
      'us-east-1 DescribeImages ImageId.1=ari-7cb0560b',
      'us-west-2 DescribeImages ImageId.1=aki-52a34525 ImageId.2=ari-7cb0560b',
      'us-west-2 DescribeImages ImageId.1=aki-52a34525',
      'us-west-2 DescribeImages ImageId.1=ari-7cb0560b',
      'eu-west-1 DescribeImages ImageId.1=aki-52a34525 ImageId.2=ari-7cb0560b',
      `us-east-1 DescribeImages Owner.1=${AMAZON} Owner.2=${FEDORA}`,
    ]);
  });

  it('fails naming the id when the target region has no match', async () => {
    await expect(mapKernelAndRamdisk({ clients: clients(), targetRegion: 'us-west-2', manifestKernelId: 'aki-919dcaf8', manifestRamdiskId: 'ari-a51cf9cc' }))
      .rejects.toThrow(/^Mapping for 'ari-a51cf9cc' not found: .*us-west-2/);
    calls();
  });

  it('fails naming the id when no region lists it', async () => {
    await expect(mapKernelAndRamdisk({ clients: clients(), targetRegion: 'us-west-2', manifestKernelId: 'aki-deadbeef' }))
      .rejects.toThrow(/kernel 'aki-deadbeef': no EC2 region lists it/);
    calls();
  });

  it('lets explicit ids win and reports the ones the target region lacks', async () => {
    const r = await mapKernelAndRamdisk({ clients: clients(), targetRegion: 'eu-west-1', manifestKernelId: 'aki-919dcaf8', manifestRamdiskId: 'ari-a51cf9cc', ramdiskId: 'ari-00000bad' });
    expect(r).toEqual({ kernelId: 'aki-52a34525', ramdiskId: 'ari-00000bad', missingInTarget: ['ari-00000bad'] });
    expect(calls()).toEqual([
      'eu-west-1 DescribeRegions',
      'us-east-1 DescribeImages ImageId.1=aki-919dcaf8',
      `eu-west-1 DescribeImages Owner.1=${AMAZON}`,
      'eu-west-1 DescribeImages ImageId.1=ari-00000bad',
    ]);
  });

  it('rejects a region EC2 does not list', async () => {
    await expect(mapKernelAndRamdisk({ clients: clients(), targetRegion: 'xx-nowhere-1', manifestKernelId: 'aki-919dcaf8' }))
      .rejects.toThrow(/^Invalid region: xx-nowhere-1 is not one of the regions EC2 lists \(us-east-1, us-west-2, eu-west-1\)/);
    expect(calls()).toEqual(['xx-nowhere-1 DescribeRegions']);
  });

  it('names the call and region when EC2 refuses a request', async () => {
    const f = ec2ClientFactory({ accessKey: REFUSED_KEY, secretKey: 'x', endpoint: ec2.url });
    await expect(mapKernelAndRamdisk({ clients: f, targetRegion: 'eu-west-1', manifestKernelId: 'aki-919dcaf8' }))
      .rejects.toThrow(/^Could not list the EC2 regions \(DescribeRegions in eu-west-1\): AuthFailure: AWS was not able to validate/);
  });

  it('asks nothing when the manifest has neither kernel nor ramdisk', async () => {
    calls();
    const r = await mapKernelAndRamdisk({ clients: clients(), targetRegion: 'eu-west-1', kernelId: 'aki-1' });
    expect(r).toEqual({ kernelId: 'aki-1', ramdiskId: undefined, missingInTarget: [] });
    expect(calls()).toEqual([]);
  });

  it('strips only the bucket from a location', () => {
    expect(locationKey('ec2-public-images-eu/a/b.manifest.xml')).toBe('a/b.manifest.xml');
    expect(locationKey('/bucket/x.manifest.xml')).toBe('x.manifest.xml');
  });
});

describe('EC2 client options', () => {
  it('needs the access key and the secret key together', () => {
    expect(() => ec2ClientFactory({ accessKey: 'A' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', option: 'secretKey' }));
    expect(() => ec2ClientFactory({ secretKey: 'S' })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', option: 'accessKey' }));
  });

  it('takes the endpoint from the flag, $AMITOOLS_EC2_ENDPOINT, or the original\'s region@url variable', () => {
    expect(endpointFor('eu-west-1', { endpoint: 'http://a', env: { AMITOOLS_EC2_ENDPOINT: 'http://b' } })).toBe('http://a');
    expect(endpointFor('eu-west-1', { env: { AMITOOLS_EC2_ENDPOINT: 'http://b' } })).toBe('http://b');
    expect(endpointFor('eu-west-1', { env: { AMITOOLS_EC2_REGION_ENDPOINT: 'eu-west-1@ec2.example.com' } })).toBe('https://ec2.example.com');
    expect(endpointFor('us-east-1', { env: { AMITOOLS_EC2_REGION_ENDPOINT: 'eu-west-1@ec2.example.com' } })).toBeUndefined();
  });
});
