import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import {
  METADATA_UNREACHABLE, MetadataClient, MetadataUnreachableError, mergeInherited, metadataEndpoint, readInstanceMetadata,
} from '../../src/ec2/metadata.js';
import { SAMPLE_METADATA, startImds, type ImdsStandin } from '../helpers/volume-imds.js';

let imds: ImdsStandin | undefined;
afterEach(async () => {
  await imds?.close();
  imds = undefined;
});

describe('metadata endpoint', () => {
  it('honours AWS_EC2_METADATA_SERVICE_ENDPOINT and defaults to the link-local address', () => {
    expect(metadataEndpoint({})).toBe('http://169.254.169.254');
    expect(metadataEndpoint({ AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:1234/' })).toBe('http://127.0.0.1:1234');
  });
});

describe('readInstanceMetadata', () => {
  it('uses an IMDSv2 session token on every request when the service requires one', async () => {
    imds = await startImds({ requireToken: true, data: SAMPLE_METADATA });
    const client = new MetadataClient({ endpoint: imds.url });
    const md = await readInstanceMetadata(client);
    expect(client.version).toBe(2);
    expect(md).toEqual({
      amiId: 'ami-12345678',
      ancestorAmiIds: ['ami-0000000a', 'ami-0000000b'],
      kernelId: 'aki-88aa75e1',
      ramdiskId: 'ari-4ca64d25',
      productCodes: ['PC1A2B3C', 'PC4D5E6F'],
      // in the service's order (the manifest builder sorts); ebs1 is an attached volume, not part of the image
      blockDeviceMappings: [
        { virtual: 'ami', device: 'sda1' },
        { virtual: 'root', device: '/dev/sda1' },
        { virtual: 'ephemeral0', device: 'sdb' },
        { virtual: 'swap', device: 'sda3' },
      ],
    });
    // @aws-sdk/ec2-metadata-service asks for a token before each request; ours asks once more to learn the version.
    const gets = imds.log.filter((l) => l.startsWith('GET'));
    expect(gets.length).toBeGreaterThan(0);
    expect(gets.every((l) => l.endsWith(' v2'))).toBe(true);
    expect(imds.log.filter((l) => l.startsWith('PUT'))).toHaveLength(gets.length + 1);
  });

  it('falls back to IMDSv1 when the token request is refused', async () => {
    imds = await startImds({ v1Only: true, data: { 'ami-id': 'ami-1', 'kernel-id': 'aki-1' } });
    const client = new MetadataClient({ endpoint: imds.url });
    const md = await readInstanceMetadata(client);
    expect(client.version).toBe(1);
    expect(md.amiId).toBe('ami-1');
    expect(md.kernelId).toBe('aki-1');
    expect(md.ramdiskId).toBeUndefined();
    expect(md.blockDeviceMappings).toBeUndefined();
  });

  it('does not fall back to IMDSv1 when AWS_EC2_METADATA_V1_DISABLED says so', async () => {
    imds = await startImds({ v1Only: true, data: { 'ami-id': 'ami-1' } });
    process.env.AWS_EC2_METADATA_V1_DISABLED = 'true';
    try {
      await expect(readInstanceMetadata(new MetadataClient({ endpoint: imds.url }))).rejects.toThrow(METADATA_UNREACHABLE);
      expect(imds.log.filter((l) => l.startsWith('GET'))).toEqual([]);
    } finally {
      delete process.env.AWS_EC2_METADATA_V1_DISABLED;
    }
  });

  it('reports an unreachable service with the original message, quickly', async () => {
    // A port nobody listens on: reserve one, then close it.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const client = new MetadataClient({ env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${port}` } });
    const err = await readInstanceMetadata(client).catch((e) => e);
    expect(err).toBeInstanceOf(MetadataUnreachableError);
    expect(err.message).toBe(METADATA_UNREACHABLE);
    expect(err.code).toBe('METADATA_UNREACHABLE');
  });

  it('times out on a service that accepts connections but never answers', async () => {
    const srv = createServer(() => { /* hold the socket */ });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      const started = Date.now();
      const client = new MetadataClient({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 300 });
      expect(await client.accessible()).toBe(false);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      srv.close();
    }
  });

  it('treats AWS_EC2_METADATA_DISABLED as unreachable', async () => {
    imds = await startImds({ data: SAMPLE_METADATA });
    const client = new MetadataClient({ env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url, AWS_EC2_METADATA_DISABLED: 'true' } });
    await expect(readInstanceMetadata(client)).rejects.toThrow(METADATA_UNREACHABLE);
    expect(imds.log).toEqual([]);
  });
});

describe('mergeInherited', () => {
  const md = {
    amiId: 'ami-3', ancestorAmiIds: ['ami-1', 'ami-2'], kernelId: 'aki-1', ramdiskId: 'ari-1', productCodes: ['A', 'B'],
    blockDeviceMappings: [{ virtual: 'root', device: '/dev/sda1' }],
  };

  it('fills what the flags leave open and appends the current ami-id to the ancestry', () => {
    const r = mergeInherited({}, md);
    expect(r.fields).toEqual({
      kernelId: 'aki-1', ramdiskId: 'ari-1', productCodes: ['A,B'],
      blockDeviceMappings: [{ virtual: 'root', device: '/dev/sda1' }], ancestry: ['ami-1', 'ami-2', 'ami-3'],
    });
    expect(r.missing).toEqual([]);
    expect(r.inherited).toEqual(['ami-id', 'ancestor-ami-ids', 'kernel-id', 'ramdisk-id', 'product-codes', 'block-device-mapping']);
  });

  it('lets explicit flags win and reports what the service lacked', () => {
    const r = mergeInherited({ kernelId: 'aki-flag', productCodes: ['X'] }, { amiId: 'ami-9' });
    expect(r.fields.kernelId).toBe('aki-flag');
    expect(r.fields.productCodes).toEqual(['X']);
    expect(r.fields.ramdiskId).toBeUndefined();
    expect(r.fields.ancestry).toEqual(['ami-9']);
    expect(r.missing).toEqual(['ancestor-ami-ids', 'ramdisk-id', 'block-device-mapping']);
  });

  it('does not repeat the ami-id already in the ancestry', () => {
    expect(mergeInherited({}, { amiId: 'ami-2', ancestorAmiIds: ['ami-1', 'ami-2'] }).fields.ancestry).toEqual(['ami-1', 'ami-2']);
  });
});
