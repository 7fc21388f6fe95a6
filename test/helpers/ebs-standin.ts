import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { REFUSED_KEY, type Ec2Standin, type StandinSnapshot } from './ec2-standin.js';

const BLOCK = 512 * 1024;
const GiB = 1024 ** 3;

/** One EBS direct API call as the stand-in saw it, answered or refused. */
export interface EbsCall { action: 'StartSnapshot' | 'PutSnapshotBlock' | 'CompleteSnapshot' | string; snapshotId?: string; blockIndex?: number; status: number; error?: string; headers: Record<string, string> }

/** A fault for one PutSnapshotBlock attempt (counted per block from 1): a 400 ThrottlingException or a 500. */
export type EbsFault = 'throttle' | 'internal' | undefined;

export interface EbsStandin {
  url: string;
  log: EbsCall[];
  /** Decides per PutSnapshotBlock attempt whether to fail it (before any check). */
  fault: ((call: { blockIndex: number; attempt: number }) => EbsFault) | undefined;
  /** Added to every PutSnapshotBlock (the bench's network). */
  putDelayMs: number;
  /** Requests in flight now, and the most at once. */
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(readonly status: number, readonly type: string, message: string, readonly reason?: string) { super(message); }
}
const validation = (message: string, reason = 'INVALID_PARAMETER_VALUE') => new ApiError(400, 'ValidationException', message, reason);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('base64');

/**
 * A stand-in for the EBS direct APIs (REST/JSON, signing name `ebs`) on 127.0.0.1, sharing its snapshots with the
 * EC2 stand-in (DescribeSnapshots, DeleteSnapshot, RegisterImage see them). It checks what EBS checks: a SigV4
 * Authorization whose signed headers include the block checksum; StartSnapshot's size, description, tags, KMS key
 * only with encryption, the client token's idempotency; PutSnapshotBlock on a pending snapshot of the caller's, a
 * block index inside the volume, x-amz-Data-Length and the body both 524288 bytes, SHA256 as the algorithm and the
 * checksum matching the body; CompleteSnapshot's changed-block count and its LINEAR aggregate (SHA-256 over the
 * blocks' raw digests in index order). Written blocks land in the snapshot's recording at index × 512 KiB.
 */
export async function startEbsStandin(ec2: Ec2Standin): Promise<EbsStandin> {
  const attempts = new Map<string, number>();
  const standin = { log: [], fault: undefined, putDelayMs: 0, inFlight: 0, maxInFlight: 0 } as unknown as EbsStandin;

  const snapshotOf = (id: string, region: string): StandinSnapshot => {
    const snap = ec2.snapshots.get(id);
    if (!snap || snap.region !== region) throw new ApiError(404, 'ResourceNotFoundException', `The snapshot '${id}' does not exist.`, 'SNAPSHOT_NOT_FOUND');
    return snap;
  };

  const startSnapshot = (region: string, body: Buffer): { status: number; json: unknown } => {
    let input: Record<string, unknown>;
    try { input = JSON.parse(body.toString('utf8')); } catch { throw new ApiError(400, 'SerializationException', 'request body is not JSON'); }
    const size = input.VolumeSize;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 65536) throw validation(`Volume size ${String(size)} is invalid`, 'INVALID_VOLUME_SIZE');
    const description = input.Description;
    if (description !== undefined && (typeof description !== 'string' || description.length > 255)) throw validation('Description is invalid');
    const tags = (input.Tags ?? []) as { Key?: string; Value?: string }[];
    if (!Array.isArray(tags) || tags.length > 50 || tags.some((t) => !t.Key || t.Key.length > 127 || (t.Value ?? '').length > 255 || t.Key.startsWith('aws:'))) throw validation('Tags are invalid', 'INVALID_TAG');
    if (input.KmsKeyArn !== undefined && input.Encrypted !== true) throw validation('KmsKeyArn can only be given with Encrypted true', 'INVALID_PARAMETER_VALUE');
    const token = input.ClientToken as string | undefined;
    let snap = token ? [...ec2.snapshots.values()].find((s) => s.clientToken === token && s.region === region) : undefined;
    if (snap && snap.volumeSizeGiB !== size) throw validation('The client token was used with other parameters', 'INVALID_PARAMETER_VALUE');
    snap ??= ec2.newSnapshot({
      region, volumeSizeGiB: size, encrypted: input.Encrypted === true, kmsKeyArn: input.KmsKeyArn as string | undefined,
      tags: tags.map((t) => ({ Key: t.Key!, Value: t.Value ?? '' })), description: description as string | undefined, clientToken: token,
    });
    return {
      status: 201,
      json: {
        SnapshotId: snap.snapshotId, OwnerId: snap.ownerId, Status: 'pending', StartTime: snap.startTime.getTime() / 1000, VolumeSize: size,
        BlockSize: BLOCK, Tags: snap.tags, ...(snap.description !== undefined ? { Description: snap.description } : {}),
        ...(snap.kmsKeyArn ? { KmsKeyArn: snap.kmsKeyArn } : {}), SseType: snap.encrypted ? 'sse-ebs' : 'none',
      },
    };
  };

  const putBlock = async (region: string, id: string, indexText: string, headers: IncomingMessage['headers'], body: Buffer, call: EbsCall) => {
    const index = Number(indexText);
    call.blockIndex = index;
    const key = `${id}/${index}`;
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    if (standin.putDelayMs) await sleep(standin.putDelayMs);
    const fault = standin.fault?.({ blockIndex: index, attempt });
    if (fault === 'throttle') throw new ApiError(400, 'ThrottlingException', 'Rate exceeded');
    if (fault === 'internal') throw new ApiError(500, 'InternalServerException', 'An internal error occurred');
    const snap = snapshotOf(id, region);
    if (snap.state !== 'pending' || snap.completed) throw validation(`The snapshot '${id}' is not in the pending state`, 'INVALID_SNAPSHOT_ID');
    if (!/^\d+$/.test(indexText) || index >= (snap.volumeSizeGiB * GiB) / BLOCK) throw validation(`Block index ${indexText} is outside the ${snap.volumeSizeGiB} GiB volume`, 'INVALID_BLOCK');
    if (headers['x-amz-data-length'] !== String(BLOCK)) throw validation(`x-amz-Data-Length ${headers['x-amz-data-length']} is not ${BLOCK}`, 'INVALID_BLOCK');
    if (body.length !== BLOCK) throw validation(`The block is ${body.length} bytes, not ${BLOCK}`, 'INVALID_BLOCK');
    if (headers['x-amz-checksum-algorithm'] !== 'SHA256') throw validation(`Checksum algorithm ${headers['x-amz-checksum-algorithm']} is not supported`);
    const sum = sha256(body);
    if (headers['x-amz-checksum'] !== sum) throw validation(`The checksum ${headers['x-amz-checksum']} does not match the block data`);
    const fd = openSync(snap.path, 'r+');
    try { writeSync(fd, body, 0, BLOCK, index * BLOCK); } finally { closeSync(fd); }
    snap.blocks.set(index, sum);
    return { status: 201, json: {}, headers: { 'x-amz-Checksum': sum, 'x-amz-Checksum-Algorithm': 'SHA256' } };
  };

  const complete = (region: string, id: string, headers: IncomingMessage['headers']) => {
    const snap = snapshotOf(id, region);
    if (snap.completed) throw validation(`The snapshot '${id}' is already completed`, 'INVALID_SNAPSHOT_ID');
    const count = headers['x-amz-changedblockscount'];
    if (count === undefined || !/^\d+$/.test(String(count))) throw validation('x-amz-ChangedBlocksCount is missing or not a number');
    if (Number(count) !== snap.blocks.size) throw validation(`ChangedBlocksCount ${count} does not match the ${snap.blocks.size} blocks written`);
    const given = headers['x-amz-checksum'];
    if (given !== undefined) {
      if (headers['x-amz-checksum-algorithm'] !== 'SHA256' || headers['x-amz-checksum-aggregation-method'] !== 'LINEAR') throw validation('Only SHA256 with LINEAR aggregation is supported');
      const h = createHash('sha256');
      for (const i of [...snap.blocks.keys()].sort((a, b) => a - b)) h.update(Buffer.from(snap.blocks.get(i)!, 'base64'));
      if (h.digest('base64') !== given) throw validation('The aggregated checksum does not match the blocks written');
    }
    snap.completed = true;
    snap.state = 'completed';
    snap.describesLeft = 2;
    return { status: 202, json: { Status: 'pending' } };
  };

  const handle = async (req: IncomingMessage, body: Buffer, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const call: EbsCall = { action: '', status: 0, headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])) };
    standin.log.push(call);
    const send = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      call.status = status;
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': '0b1e2d3c-0000-4000-8000-000000000000', ...headers });
      res.end(JSON.stringify(json));
    };
    try {
      const path = url.pathname;
      let m: RegExpExecArray | null;
      if (req.method === 'POST' && path === '/snapshots') call.action = 'StartSnapshot';
      else if (req.method === 'PUT' && (m = /^\/snapshots\/([^/]+)\/blocks\/([^/]+)$/.exec(path))) { call.action = 'PutSnapshotBlock'; call.snapshotId = m[1]; }
      else if (req.method === 'POST' && (m = /^\/snapshots\/completion\/([^/]+)$/.exec(path))) { call.action = 'CompleteSnapshot'; call.snapshotId = m[1]; }
      else throw new ApiError(404, 'UnknownOperationException', `${req.method} ${path} is not an EBS direct API`);
      // SigV4 with the ebs signing name; the block checksum header must be among the signed ones.
      const auth = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/ebs\/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$/.exec(req.headers.authorization ?? '');
      if (!auth || auth[1] === REFUSED_KEY) throw new ApiError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
      if (call.action === 'PutSnapshotBlock' && !auth[3].split(';').includes('x-amz-checksum')) throw new ApiError(403, 'InvalidSignatureException', 'x-amz-checksum is not signed');
      const region = auth[2];
      if (ec2.deny.has(call.action)) throw new ApiError(403, 'AccessDeniedException', `User is not authorized to perform: ebs:${call.action}`, 'UNAUTHORIZED_ACCOUNT');
      const out = call.action === 'StartSnapshot' ? startSnapshot(region, body)
        : call.action === 'PutSnapshotBlock' ? await putBlock(region, m![1], m![2], req.headers, body, call)
        : complete(region, m![1], req.headers);
      if (call.action === 'StartSnapshot') call.snapshotId = (out.json as { SnapshotId: string }).SnapshotId;
      send(out.status, out.json, (out as { headers?: Record<string, string> }).headers);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, 'InternalServerException', String(err));
      call.error = e.type;
      send(e.status, { message: e.message, ...(e.reason ? { Reason: e.reason } : {}) }, { 'x-amzn-ErrorType': e.type });
    }
  };

  const server: Server = createServer((req, res) => {
    standin.inFlight++;
    standin.maxInFlight = Math.max(standin.maxInFlight, standin.inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => { void handle(req, Buffer.concat(chunks), res).finally(() => { standin.inFlight--; }); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(standin, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  });
}

/** The first `length` bytes of a file (a snapshot's recording is as large as its volume). */
export function readHead(path: string, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    for (let n = 0, r = 1; n < length && r > 0; n += r) r = readSync(fd, buf, n, length - n, n);
  } finally {
    closeSync(fd);
  }
  return buf;
}
