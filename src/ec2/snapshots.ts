import { setTimeout as sleep } from 'node:timers/promises';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { ec2Sdk } from './sdk.js';
import { ToolError } from '../errors.js';
import { ec2Error } from './errors.js';

const { CreateSnapshotCommand, DeleteSnapshotCommand, DescribeSnapshotsCommand } = ec2Sdk;

/** The first wait between two DescribeSnapshots, doubled up to the last: a snapshot takes seconds to hours. */
const FIRST_POLL_MS = 500;
const MAX_POLL_MS = 15_000;

/** CreateSnapshot of a volume (tags on the snapshot); its id. */
export async function createSnapshot(client: EC2Client, o: { volumeId: string; description?: string; tags?: { Key: string; Value: string }[] }): Promise<string> {
  try {
    const out = await client.send(new CreateSnapshotCommand({
      VolumeId: o.volumeId,
      ...(o.description !== undefined ? { Description: o.description } : {}),
      ...(o.tags?.length ? { TagSpecifications: [{ ResourceType: 'snapshot', Tags: o.tags }] } : {}),
    }));
    if (!out.SnapshotId) throw new ToolError('CreateSnapshot answered without a snapshot id', { code: 'EC2_ERROR' });
    return out.SnapshotId;
  } catch (err) {
    throw err instanceof ToolError ? err : ec2Error(err, `CreateSnapshot of ${o.volumeId} failed`, 'CreateSnapshot');
  }
}

/** Polls DescribeSnapshots until the snapshot is `completed` (progress reported as EC2 gives it); `error` is a failure. */
export async function waitUntilCompleted(client: EC2Client, snapshotId: string, onProgress?: (percent: number) => void, signal?: AbortSignal): Promise<void> {
  for (let delay = FIRST_POLL_MS; ; delay = Math.min(MAX_POLL_MS, delay * 2)) {
    let snap;
    try {
      const out = await client.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal: signal });
      snap = out.Snapshots?.find((s) => s.SnapshotId === snapshotId);
    } catch (err) {
      throw ec2Error(err, `DescribeSnapshots of ${snapshotId} failed`, 'DescribeSnapshots');
    }
    if (!snap) throw new ToolError(`DescribeSnapshots does not list ${snapshotId}`, { code: 'EC2_ERROR' });
    const percent = Number.parseInt(snap.Progress ?? '', 10);
    if (Number.isFinite(percent)) onProgress?.(percent);
    if (snap.State === 'completed') return;
    if (snap.State === 'error') {
      throw new ToolError(`snapshot ${snapshotId} failed${snap.StateMessage ? `: ${snap.StateMessage}` : ''}`, { code: 'EC2_ERROR' });
    }
    await sleep(delay, undefined, { signal });
  }
}

export async function deleteSnapshot(client: EC2Client, snapshotId: string): Promise<void> {
  try {
    await client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
  } catch (err) {
    throw ec2Error(err, `DeleteSnapshot of ${snapshotId} failed`, 'DeleteSnapshot');
  }
}
