// The EBS snapshot sink against the EBS and EC2 stand-ins (real HTTP, real SDK clients): which blocks it sends, what
// it completes with, and what a failure leaves.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ebsClient } from '../../src/ebs/client.js';
import { EBS_BLOCK, EbsSnapshotSink, snapshotSizeGiB } from '../../src/ebs/snapshot-sink.js';
import { ec2ClientFactory } from '../../src/ec2/client.js';
import { deleteSnapshot, waitUntilCompleted } from '../../src/ec2/snapshots.js';
import { readHead, startEbsStandin, type EbsStandin } from '../helpers/ebs-standin.js';
import { startEc2Standin, type Ec2Standin } from '../helpers/ec2-standin.js';

let ec2: Ec2Standin;
let ebs: EbsStandin;
const env = () => ({ AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_ENDPOINT_URL_EBS: ebs.url, AWS_ENDPOINT_URL_EC2: ec2.url, AWS_ENDPOINT_URL: '' });

beforeAll(async () => {
  ec2 = await startEc2Standin({ regions: ['us-east-1'], images: {} });
  ebs = await startEbsStandin(ec2);
});
afterAll(async () => { await ebs?.close(); await ec2?.close(); });
beforeEach(() => { ebs.log.length = 0; ebs.fault = undefined; ec2.log.length = 0; });

function sink(imageSize: number, o: { concurrency?: number; keepPartial?: boolean } = {}): EbsSnapshotSink {
  const e = env();
  const client = ebsClient({ region: 'us-east-1', env: e, concurrency: o.concurrency ?? 4, retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 } });
  const ec2c = ec2ClientFactory({ env: e })('us-east-1');
  return new EbsSnapshotSink({
    client, imageSize, volumeSizeGiB: snapshotSizeGiB(imageSize), concurrency: o.concurrency ?? 4, keepPartial: o.keepPartial,
    control: { waitUntilCompleted: (id, p) => waitUntilCompleted(ec2c, id, p), deleteSnapshot: (id) => deleteSnapshot(ec2c, id) },
  });
}

describe('EbsSnapshotSink', () => {
  it('sends only the blocks with data, from pieces with holes between them, and completes with the LINEAR aggregate', async () => {
    const size = 5 * EBS_BLOCK + 1000;
    const image = Buffer.alloc(size);
    image.fill(1, 10, 20);                          // block 0
    image.fill(2, 3 * EBS_BLOCK - 5, 3 * EBS_BLOCK + 5); // blocks 2 and 3, one piece across the boundary
    image.fill(3, 5 * EBS_BLOCK + 999, size);       // the last, partial block
    const s = sink(size);
    const id = await s.start();
    await s.write(image.subarray(10, 20), 10);
    await s.write(image.subarray(3 * EBS_BLOCK - 5, 3 * EBS_BLOCK + 5), 3 * EBS_BLOCK - 5);
    await s.write(Buffer.alloc(EBS_BLOCK), 4 * EBS_BLOCK); // zeros given as data are still not sent
    await s.write(image.subarray(5 * EBS_BLOCK + 999), 5 * EBS_BLOCK + 999);
    await s.finish(size);
    const puts = ebs.log.filter((c) => c.action === 'PutSnapshotBlock');
    expect(puts.map((c) => c.blockIndex).sort()).toEqual([0, 2, 3, 5]);
    expect(puts.every((c) => c.status === 201)).toBe(true);
    const complete = ebs.log.find((c) => c.action === 'CompleteSnapshot')!;
    expect(complete.status).toBe(202);
    expect(complete.headers['x-amz-changedblockscount']).toBe('4');
    const agg = createHash('sha256');
    for (const i of [0, 2, 3, 5]) agg.update(createHash('sha256').update(image.subarray(i * EBS_BLOCK, (i + 1) * EBS_BLOCK).length === EBS_BLOCK ? image.subarray(i * EBS_BLOCK, (i + 1) * EBS_BLOCK) : Buffer.concat([image.subarray(i * EBS_BLOCK), Buffer.alloc(EBS_BLOCK - (size - i * EBS_BLOCK))])).digest());
    expect(complete.headers['x-amz-checksum']).toBe(agg.digest('base64'));
    const snap = ec2.snapshots.get(id)!;
    expect(snap.state).toBe('completed');
    expect(readHead(snap.path, size).equals(image)).toBe(true);
    expect(ec2.log.filter((c) => c.action === 'DescribeSnapshots').length).toBeGreaterThanOrEqual(2);
  });

  it('a failure after StartSnapshot deletes the snapshot on abort, or keeps it with keepPartial', async () => {
    ebs.fault = () => 'internal';
    for (const keepPartial of [false, true]) {
      const s = sink(EBS_BLOCK * 2, { keepPartial });
      const id = await s.start();
      const err = await s.write(Buffer.alloc(EBS_BLOCK * 2, 7), 0).then(() => s.finish(EBS_BLOCK * 2)).catch((e: Error) => e);
      expect(String(err)).toMatch(/PutSnapshotBlock of block \d of snap-\S+ failed: InternalServerException/);
      await s.abort();
      expect(s.outcome).toEqual({ snapshotId: id, action: keepPartial ? 'kept' : 'deleted' });
      expect(ec2.snapshots.has(id)).toBe(keepPartial);
    }
    expect(ebs.log.some((c) => c.action === 'CompleteSnapshot')).toBe(false);
  });
});
