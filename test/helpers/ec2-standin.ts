import { copyFileSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { checkClient } from './s3-fixture.js';

/** One image as EC2's DescribeImages lists it (the fields the Query API answers with). */
export interface StandinImage {
  imageId: string; location: string; ownerId: string; type: 'kernel' | 'ramdisk' | 'machine';
  architecture?: string; ownerAlias?: string; name?: string;
  description?: string; virtualizationType?: string; kernelId?: string; ramdiskId?: string; rootDeviceName?: string;
  blockDeviceMappings?: { deviceName: string; virtualName?: string; snapshotId?: string; volumeType?: string; deleteOnTermination?: boolean }[];
  rootDeviceType?: 'ebs' | 'instance-store'; enaSupport?: boolean;
}

/**
 * A snapshot as EC2 and the EBS direct APIs (test/helpers/ebs-standin.ts) both see it. Its blocks are recorded in a
 * sparse file of the volume's size, so a test can read the disk back.
 */
export interface StandinSnapshot {
  snapshotId: string; region: string; ownerId: string; volumeSizeGiB: number; volumeId: string;
  /** pending until completed; then EC2 reports pending for `describesLeft` more DescribeSnapshots. */
  state: 'pending' | 'completed' | 'error'; describesLeft: number;
  description?: string; encrypted: boolean; kmsKeyArn?: string; tags: { Key: string; Value: string }[];
  clientToken?: string; startTime: Date;
  /** The disk as recorded: written blocks at their offsets, holes elsewhere. */
  path: string;
  /** Block index → base64 SHA-256, for blocks written through PutSnapshotBlock. */
  blocks: Map<number, string>;
  completed: boolean;
}

/** A request as the stand-in saw it: the region comes from the SigV4 credential scope. */
export interface LoggedRequest { region: string; action: string; params: Record<string, string>; accessKey: string }

export interface Ec2Standin {
  url: string;
  log: LoggedRequest[];
  /** The images by region, as registered and deregistered. */
  images: Record<string, StandinImage[]>;
  /** The next this-many requests are throttled (503 RequestLimitExceeded), as EC2 does under load. */
  throttleNext: number;
  /** Actions the caller's IAM policy does not allow: answered with UnauthorizedOperation, as EC2 does. */
  deny: Set<string>;
  /** Snapshots by id, shared with the EBS stand-in. */
  snapshots: Map<string, StandinSnapshot>;
  /** Volumes CreateSnapshot can snapshot: their size and the regular file holding their bytes (a loop device's backing file). */
  volumes: Map<string, { sizeGiB: number; path: string }>;
  /** A new snapshot (pending, with an empty recording); the EBS stand-in's StartSnapshot uses it too. */
  newSnapshot(s: Pick<StandinSnapshot, 'region' | 'volumeSizeGiB' | 'encrypted' | 'tags'> & Partial<StandinSnapshot>): StandinSnapshot;
  close(): Promise<void>;
}

/** An access key the stand-in refuses, as EC2 does bad credentials. */
export const REFUSED_KEY = 'AKIDREFUSEDEXAMPLE';
/** The account every accepted key belongs to ('self' in Owners). */
export const STANDIN_ACCOUNT = '111122223333';

const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const ARCHITECTURES = ['i386', 'x86_64', 'arm64', 'i386_mac', 'x86_64_mac', 'arm64_mac'];
const IMAGE_NAME = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function list(params: Record<string, string>, prefix: string): string[] {
  return Object.keys(params)
    .filter((k) => new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.\\d+$`).test(k))
    .sort((a, b) => Number(a.slice(prefix.length + 1)) - Number(b.slice(prefix.length + 1)))
    .map((k) => params[k]);
}

/** Numbered structures: `BlockDeviceMapping.N.Field` → [{ Field: value }] in N order. */
function structs(params: Record<string, string>, prefix: string): Record<string, string>[] {
  const byIndex = new Map<number, Record<string, string>>();
  for (const [k, v] of Object.entries(params)) {
    const m = new RegExp(`^${prefix}\\.(\\d+)\\.(.+)$`).exec(k);
    if (!m) continue;
    const i = Number(m[1]);
    if (!byIndex.has(i)) byIndex.set(i, {});
    byIndex.get(i)![m[2]] = v;
  }
  return [...byIndex].sort(([a], [b]) => a - b).map(([, s]) => s);
}

function imageItem(i: StandinImage): string {
  return '<item>' +
    `<imageId>${esc(i.imageId)}</imageId><imageLocation>${esc(i.location)}</imageLocation><imageState>available</imageState>` +
    `<imageOwnerId>${esc(i.ownerId)}</imageOwnerId><creationDate>2011-07-26T19:27:41.000Z</creationDate><isPublic>true</isPublic>` +
    `<architecture>${esc(i.architecture ?? 'x86_64')}</architecture><imageType>${i.type}</imageType>` +
    (i.kernelId ? `<kernelId>${esc(i.kernelId)}</kernelId>` : '') + (i.ramdiskId ? `<ramdiskId>${esc(i.ramdiskId)}</ramdiskId>` : '') +
    (i.ownerAlias ? `<imageOwnerAlias>${esc(i.ownerAlias)}</imageOwnerAlias>` : '') +
    (i.name ? `<name>${esc(i.name)}</name>` : '') + (i.description ? `<description>${esc(i.description)}</description>` : '') +
    `<rootDeviceType>${i.rootDeviceType ?? 'instance-store'}</rootDeviceType>${i.rootDeviceName ? `<rootDeviceName>${esc(i.rootDeviceName)}</rootDeviceName>` : ''}` +
    `<blockDeviceMapping>${(i.blockDeviceMappings ?? []).map((m) => `<item><deviceName>${esc(m.deviceName)}</deviceName>${m.virtualName ? `<virtualName>${esc(m.virtualName)}</virtualName>` : ''}` +
      `${m.snapshotId ? `<ebs><snapshotId>${m.snapshotId}</snapshotId></ebs>` : ''}</item>`).join('')}</blockDeviceMapping>` +
    `<virtualizationType>${esc(i.virtualizationType ?? 'paravirtual')}</virtualizationType>` +
    '<tagSet/><hypervisor>xen</hypervisor></item>';
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>0b1e2d3c-0000-4000-8000-000000000000</RequestID></Response>`;
}

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message); }
}
const invalid = (message: string) => new ApiError(400, 'InvalidParameterValue', message);

/**
 * A stand-in for EC2's Query API on 127.0.0.1 (there is no local EC2): DescribeRegions, DescribeImages (ids, owners
 * incl. self, filters manifest-location/name/image-type/architecture), RegisterImage and DeregisterImage, answering
 * with the XML shapes EC2 sends and checking what EC2 checks: a SigV4 signature's credential scope, the image name's
 * rule and uniqueness, architecture and virtualization values, an image location whose manifest exists in S3 (read
 * from `s3`, as EC2 reads the bucket), ephemeral virtual names, ownership on deregistration. Logs every request.
 */
export async function startEc2Standin(world: {
  regions: string[]; images: Record<string, StandinImage[]>; s3?: { url: string; accessKey?: string; secretKey?: string };
}): Promise<Ec2Standin> {
  const log: LoggedRequest[] = [];
  const images = world.images;
  let nextId = 1;
  const standin = { throttleNext: 0, deny: new Set<string>(), images, snapshots: new Map(), volumes: new Map() } as unknown as Ec2Standin;
  const recordings = mkdtempSync(join(tmpdir(), 'amitools-snapshots-'));
  let nextSnapshot = 1;
  standin.newSnapshot = (s) => {
    const snapshotId = `snap-${String(nextSnapshot++).padStart(17, '0')}`;
    const path = join(recordings, snapshotId);
    const snap: StandinSnapshot = {
      snapshotId, ownerId: STANDIN_ACCOUNT, volumeId: 'vol-ffffffff', state: 'pending', describesLeft: 1, startTime: new Date(), path,
      blocks: new Map(), completed: false, ...s,
    };
    copyFileSync('/dev/null', path);
    truncateSync(path, snap.volumeSizeGiB * 1024 ** 3);
    standin.snapshots.set(snapshotId, snap);
    return snap;
  };
  const reply = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': '0b1e2d3c-0000-4000-8000-000000000000' });
    res.end(body);
  };
  const head = `<?xml version="1.0" encoding="UTF-8"?>\n`;
  const requestId = '<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>';

  const describeImages = (region: string, params: Record<string, string>): string => {
    let found = images[region] ?? [];
    const ids = list(params, 'ImageId');
    const owners = list(params, 'Owner').map((o) => (o === 'self' ? STANDIN_ACCOUNT : o));
    if (ids.length) {
      const unknown = ids.filter((id) => !found.some((i) => i.imageId === id));
      if (unknown.length) throw new ApiError(400, 'InvalidAMIID.NotFound', `The image id '[${unknown.join(', ')}]' does not exist`);
      found = found.filter((i) => ids.includes(i.imageId));
    }
    if (owners.length) found = found.filter((i) => owners.includes(i.ownerId) || (i.ownerAlias !== undefined && owners.includes(i.ownerAlias)));
    for (const f of structs(params, 'Filter')) {
      const values = list(f, 'Value');
      const field: Record<string, (i: StandinImage) => string | undefined> = {
        'manifest-location': (i) => i.location, name: (i) => i.name, 'image-type': (i) => i.type, architecture: (i) => i.architecture,
      };
      const get = field[f.Name ?? ''];
      if (!get) throw invalid(`The filter '${f.Name}' is invalid`);
      found = found.filter((i) => values.includes(get(i) ?? ''));
    }
    return `${head}<DescribeImagesResponse xmlns="${NS}">${requestId}<imagesSet>${found.map(imageItem).join('')}</imagesSet></DescribeImagesResponse>`;
  };

  const registerImage = async (region: string, params: Record<string, string>): Promise<string> => {
    const name = params.Name;
    if (name === undefined) throw new ApiError(400, 'MissingParameter', 'The request must contain the parameter name');
    if (!IMAGE_NAME.test(name)) throw new ApiError(400, 'InvalidAMIName.Malformed', `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_'`);
    if (params.Description !== undefined && params.Description.length > 255) throw invalid('Value for parameter description is invalid. Length exceeds maximum of 255.');
    const location = params.ImageLocation;
    if (!location && structs(params, 'BlockDeviceMapping').some((m) => m['Ebs.SnapshotId'])) return registerEbsImage(region, params);
    if (!location) throw new ApiError(400, 'MissingParameter', 'The request must contain the parameter ImageLocation (an instance store-backed AMI)');
    if (params.Architecture !== undefined && !ARCHITECTURES.includes(params.Architecture)) {
      throw invalid(`Value (${params.Architecture}) for parameter architecture is invalid. Valid values: ${ARCHITECTURES.join(', ')}`);
    }
    const vt = params.VirtualizationType;
    if (vt !== undefined && vt !== 'hvm' && vt !== 'paravirtual') throw invalid(`Value (${vt}) for parameter virtualizationType is invalid. Valid values: hvm, paravirtual`);
    for (const [what, prefix] of [['KernelId', 'aki'], ['RamdiskId', 'ari']] as const) {
      const id = params[what];
      if (id !== undefined && !new RegExp(`^${prefix}-[0-9a-f]{8}([0-9a-f]{9})?$`).test(id)) throw new ApiError(400, 'InvalidAMIID.Malformed', `Invalid id: "${id}"`);
    }
    const mappings = structs(params, 'BlockDeviceMapping');
    for (const m of mappings) {
      if (!m.DeviceName) throw new ApiError(400, 'MissingParameter', 'The request must contain the parameter blockDeviceMapping.deviceName');
      if (!/^ephemeral([0-9]|1[0-9]|2[0-3])$/.test(m.VirtualName ?? '')) throw invalid(`Value (${m.VirtualName}) for parameter virtualName is invalid.`);
    }
    const mine = (images[region] ??= []);
    const taken = mine.find((i) => i.ownerId === STANDIN_ACCOUNT && i.name === name);
    if (taken) throw new ApiError(400, 'InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${taken.imageId}`);
    // EC2 reads the manifest from the bucket (with the aws-exec-read grant); here with the S3 server's own key.
    const slash = location.indexOf('/');
    let manifest = '';
    try {
      if (!world.s3 || slash < 1) throw new Error('no S3');
      const out = await checkClient(world.s3.url, world.s3.accessKey, world.s3.secretKey)
        .send(new GetObjectCommand({ Bucket: location.slice(0, slash), Key: location.slice(slash + 1) }));
      manifest = await out.Body!.transformToString();
    } catch {
      throw new ApiError(400, 'InvalidManifest', `HTTP 404 (Not Found) response for URL https://s3.amazonaws.com:443/${location}: check your manifest path is correct and in the correct region.`);
    }
    if (!/^<\?xml[^>]*\?><manifest>[\s\S]*<\/manifest>\s*$/.test(manifest)) throw new ApiError(400, 'InvalidManifest', `The manifest at ${location} is not a valid manifest`);
    const arch = params.Architecture ?? /<architecture>([^<]*)<\/architecture>/.exec(manifest)?.[1] ?? 'i386';
    const imageId = `ami-${String(nextId++).padStart(17, '0')}`;
    mine.push({
      imageId, location, ownerId: STANDIN_ACCOUNT, type: 'machine', architecture: arch, name, description: params.Description,
      virtualizationType: vt ?? 'paravirtual', kernelId: params.KernelId, ramdiskId: params.RamdiskId, rootDeviceName: params.RootDeviceName,
      blockDeviceMappings: mappings.map((m) => ({ deviceName: m.DeviceName!, virtualName: m.VirtualName! })),
    });
    return `${head}<RegisterImageResponse xmlns="${NS}">${requestId}<imageId>${imageId}</imageId></RegisterImageResponse>`;
  };

  /** RegisterImage of an EBS-backed AMI: the root device maps a completed snapshot of the caller's. */
  const registerEbsImage = (region: string, params: Record<string, string>): string => {
    const name = params.Name!;
    const root = params.RootDeviceName;
    if (!root) throw new ApiError(400, 'MissingParameter', 'The request must contain the parameter rootDeviceName');
    const mappings = structs(params, 'BlockDeviceMapping');
    if (!mappings.some((m) => m.DeviceName === root)) throw new ApiError(400, 'InvalidBlockDeviceMapping', `The device '${root}' is not in the block device mapping`);
    for (const m of mappings) {
      if (!m.DeviceName) throw new ApiError(400, 'MissingParameter', 'The request must contain the parameter blockDeviceMapping.deviceName');
      const id = m['Ebs.SnapshotId'];
      if (!id) continue;
      const snap = standin.snapshots.get(id);
      if (!snap || snap.region !== region) throw new ApiError(400, 'InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
      if (snap.state !== 'completed') throw new ApiError(400, 'IncorrectState', `Snapshot '${id}' is not 'completed'.`);
      const type = m['Ebs.VolumeType'];
      if (type !== undefined && !['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'].includes(type)) throw invalid(`Value (${type}) for parameter volumeType is invalid.`);
      const size = m['Ebs.VolumeSize'];
      if (size !== undefined && Number(size) < snap.volumeSizeGiB) throw invalid(`Volume of ${size} GiB is smaller than snapshot '${id}', expect size >= ${snap.volumeSizeGiB} GiB`);
      const dot = m['Ebs.DeleteOnTermination'];
      if (dot !== undefined && dot !== 'true' && dot !== 'false') throw invalid(`Value (${dot}) for parameter deleteOnTermination is invalid.`);
    }
    const vt = params.VirtualizationType ?? 'paravirtual';
    if (vt === 'hvm' && (params.KernelId || params.RamdiskId)) throw new ApiError(400, 'InvalidParameterCombination', 'Kernel and ramdisk IDs are not supported for hvm images');
    if (params.EnaSupport === 'true' && vt !== 'hvm') throw new ApiError(400, 'InvalidParameterCombination', 'Enhanced networking with the Elastic Network Adapter (ENA) requires an hvm image');
    const mine = (images[region] ??= []);
    const taken = mine.find((i) => i.ownerId === STANDIN_ACCOUNT && i.name === name);
    if (taken) throw new ApiError(400, 'InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${taken.imageId}`);
    const imageId = `ami-${String(nextId++).padStart(17, '0')}`;
    mine.push({
      imageId, location: `${STANDIN_ACCOUNT}/${name}`, ownerId: STANDIN_ACCOUNT, type: 'machine', architecture: params.Architecture ?? 'i386', name,
      description: params.Description, virtualizationType: vt, kernelId: params.KernelId, ramdiskId: params.RamdiskId, rootDeviceName: root,
      rootDeviceType: 'ebs', enaSupport: params.EnaSupport === 'true',
      blockDeviceMappings: mappings.map((m) => ({
        deviceName: m.DeviceName!, virtualName: m.VirtualName, snapshotId: m['Ebs.SnapshotId'], volumeType: m['Ebs.VolumeType'],
        deleteOnTermination: m['Ebs.DeleteOnTermination'] === undefined ? undefined : m['Ebs.DeleteOnTermination'] === 'true',
      })),
    });
    return `${head}<RegisterImageResponse xmlns="${NS}">${requestId}<imageId>${imageId}</imageId></RegisterImageResponse>`;
  };

  const snapshotItem = (s: StandinSnapshot, tag = 'item'): string => {
    // Completed snapshots show pending (with progress) for a few more looks, as EC2's do while it copies them to S3.
    const state = s.state === 'completed' && s.describesLeft > 0 ? 'pending' : s.state;
    const progress = state === 'completed' ? 100 : s.completed ? 60 : 0;
    return `<${tag}><snapshotId>${s.snapshotId}</snapshotId><volumeId>${s.volumeId}</volumeId><status>${state}</status>` +
      `<startTime>${s.startTime.toISOString()}</startTime><progress>${progress}%</progress><ownerId>${s.ownerId}</ownerId>` +
      `<volumeSize>${s.volumeSizeGiB}</volumeSize>${s.description !== undefined ? `<description>${esc(s.description)}</description>` : ''}` +
      `<encrypted>${s.encrypted}</encrypted>${s.kmsKeyArn ? `<kmsKeyId>${esc(s.kmsKeyArn)}</kmsKeyId>` : ''}` +
      `<tagSet>${s.tags.map((t) => `<item><key>${esc(t.Key)}</key><value>${esc(t.Value)}</value></item>`).join('')}</tagSet></${tag}>`;
  };

  const describeSnapshots = (region: string, params: Record<string, string>): string => {
    const ids = list(params, 'SnapshotId');
    const found = [...standin.snapshots.values()].filter((s) => s.region === region && (ids.length === 0 || ids.includes(s.snapshotId)));
    const unknown = ids.filter((id) => !found.some((s) => s.snapshotId === id));
    if (unknown.length) throw new ApiError(400, 'InvalidSnapshot.NotFound', `The snapshot '${unknown[0]}' does not exist.`);
    const body = found.map((s) => snapshotItem(s)).join('');
    for (const s of found) if (s.state === 'completed' && s.describesLeft > 0) s.describesLeft--;
    return `${head}<DescribeSnapshotsResponse xmlns="${NS}">${requestId}<snapshotSet>${body}</snapshotSet></DescribeSnapshotsResponse>`;
  };

  const createSnapshot = (region: string, params: Record<string, string>): string => {
    const volumeId = params.VolumeId;
    if (!volumeId) throw new ApiError(400, 'MissingParameter', 'The request must contain the parameter volumeId');
    const volume = standin.volumes.get(volumeId);
    if (!volume) throw new ApiError(400, 'InvalidVolume.NotFound', `The volume '${volumeId}' does not exist.`);
    const tags = structs(params, 'TagSpecification').flatMap((t) => structs(t, 'Tag').map((x) => ({ Key: x.Key!, Value: x.Value ?? '' })));
    const snap = standin.newSnapshot({ region, volumeSizeGiB: volume.sizeGiB, volumeId, encrypted: false, tags, description: params.Description });
    // EC2 takes the volume's point-in-time contents.
    copyFileSync(volume.path, snap.path);
    truncateSync(snap.path, volume.sizeGiB * 1024 ** 3);
    snap.state = 'completed';
    snap.completed = true;
    snap.describesLeft = 2;
    return `${head}<CreateSnapshotResponse xmlns="${NS}">${requestId}<snapshotId>${snap.snapshotId}</snapshotId><volumeId>${volumeId}</volumeId>` +
      `<status>pending</status><startTime>${snap.startTime.toISOString()}</startTime><progress></progress><ownerId>${snap.ownerId}</ownerId>` +
      `<volumeSize>${volume.sizeGiB}</volumeSize><encrypted>false</encrypted></CreateSnapshotResponse>`;
  };

  const deleteSnapshot = (region: string, params: Record<string, string>): string => {
    const id = params.SnapshotId;
    if (!id) throw new ApiError(400, 'MissingParameter', 'The request must contain the parameter snapshotId');
    const snap = standin.snapshots.get(id);
    if (!snap || snap.region !== region) throw new ApiError(400, 'InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
    const user = (images[region] ?? []).find((i) => i.blockDeviceMappings?.some((m) => m.snapshotId === id));
    if (user) throw new ApiError(400, 'InvalidSnapshot.InUse', `The snapshot ${id} is currently in use by ${user.imageId}`);
    standin.snapshots.delete(id);
    rmSync(snap.path, { force: true });
    return `${head}<DeleteSnapshotResponse xmlns="${NS}">${requestId}<return>true</return></DeleteSnapshotResponse>`;
  };

  const deregisterImage = (region: string, params: Record<string, string>): string => {
    const id = params.ImageId;
    if (!id) throw new ApiError(400, 'MissingParameter', 'The request must contain the parameter imageId');
    const mine = images[region] ?? [];
    const at = mine.findIndex((i) => i.imageId === id);
    if (at < 0) throw new ApiError(400, 'InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
    if (mine[at].ownerId !== STANDIN_ACCOUNT) throw new ApiError(401, 'AuthFailure', `Not authorized for image:${id}`);
    mine.splice(at, 1);
    return `${head}<DeregisterImageResponse xmlns="${NS}">${requestId}<return>true</return></DeregisterImageResponse>`;
  };

  const handle = async (req: IncomingMessage, body: string, res: ServerResponse) => {
    if (standin.throttleNext > 0) {
      standin.throttleNext--;
      return reply(res, 503, errorXml('RequestLimitExceeded', 'Request limit exceeded.'));
    }
    const params = Object.fromEntries(new URLSearchParams(body));
    const scope = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/ec2\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/.exec(req.headers.authorization ?? '');
    if (!scope || scope[1] === REFUSED_KEY) return reply(res, 401, errorXml('AuthFailure', 'AWS was not able to validate the provided access credentials'));
    const region = scope[2];
    const action = params.Action ?? '';
    delete params.Action;
    delete params.Version;
    log.push({ region, action, params, accessKey: scope[1] });
    if (action === 'DescribeRegions') {
      const items = world.regions.map((r) => `<item><regionName>${r}</regionName><regionEndpoint>ec2.${r}.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item>`);
      return reply(res, 200, `${head}<DescribeRegionsResponse xmlns="${NS}"><requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId><regionInfo>${items.join('')}</regionInfo></DescribeRegionsResponse>`);
    }
    // Any endpoint lists the account's regions; only those answer the rest.
    if (!world.regions.includes(region)) return reply(res, 401, errorXml('AuthFailure', 'AWS was not able to validate the provided access credentials'));
    if (standin.deny.has(action)) {
      return reply(res, 403, errorXml('UnauthorizedOperation', `You are not authorized to perform this operation. User: arn:aws:iam::${STANDIN_ACCOUNT}:user/test is not authorized to perform: ec2:${action} because no identity-based policy allows the ec2:${action} action`));
    }
    try {
      if (action === 'DescribeImages') return reply(res, 200, describeImages(region, params));
      if (action === 'RegisterImage') return reply(res, 200, await registerImage(region, params));
      if (action === 'DeregisterImage') return reply(res, 200, deregisterImage(region, params));
      if (action === 'DescribeSnapshots') return reply(res, 200, describeSnapshots(region, params));
      if (action === 'CreateSnapshot') return reply(res, 200, createSnapshot(region, params));
      if (action === 'DeleteSnapshot') return reply(res, 200, deleteSnapshot(region, params));
    } catch (err) {
      if (err instanceof ApiError) return reply(res, err.status, errorXml(err.code, err.message));
      return reply(res, 500, errorXml('InternalError', String(err)));
    }
    return reply(res, 400, errorXml('InvalidAction', `The action ${action} is not valid for this web service.`));
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => { void handle(req, body, res); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(standin, {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); })
      .finally(() => rmSync(recordings, { recursive: true, force: true })),
  });
}
