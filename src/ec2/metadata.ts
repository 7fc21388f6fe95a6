import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import { ToolError } from '../errors.js';
import type { BlockDeviceMapping } from '../format/manifest.js';

/** The original's words when --inherit is on and the service does not answer. */
export const METADATA_UNREACHABLE =
  "Can't access instance metadata. If you are not bundling on an EC2 instance use --no-inherit.";

export const DEFAULT_METADATA_ENDPOINT = 'http://169.254.169.254';

/** What ec2-bundle-vol inherits; a field is absent when the service has no value for it. */
export interface InstanceMetadata {
  amiId?: string;
  ancestorAmiIds?: string[];
  kernelId?: string;
  ramdiskId?: string;
  productCodes?: string[];
  blockDeviceMappings?: BlockDeviceMapping[];
}

export interface MetadataClientOptions {
  endpoint?: string;
  /** Per request; the service answers in milliseconds on an instance, and a short limit keeps non-EC2 runs quick. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class MetadataUnreachableError extends ToolError {
  constructor(cause?: unknown) {
    super(METADATA_UNREACHABLE, { cause, code: 'METADATA_UNREACHABLE' });
    this.name = 'MetadataUnreachableError';
  }
}

/** The endpoint: AWS_EC2_METADATA_SERVICE_ENDPOINT as the AWS SDKs honour it, else the link-local address. */
export function metadataEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const e = env.AWS_EC2_METADATA_SERVICE_ENDPOINT?.trim();
  return (e || DEFAULT_METADATA_ENDPOINT).replace(/\/+$/, '');
}

const statusOf = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/**
 * The instance metadata service through the SDK's @aws-sdk/ec2-metadata-service: IMDSv2 session tokens, IMDSv1 when
 * the token call is refused (unless AWS_EC2_METADATA_V1_DISABLED or the profile's ec2_metadata_v1_disabled say no).
 * The first call finds out which: with v2 the service fetches a token for each request (its own behaviour); with v1
 * it stops asking for one.
 */
export class MetadataClient {
  readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly disabled: boolean;
  private service: MetadataService | undefined;
  private mode: 1 | 2 | undefined;

  constructor(o: MetadataClientOptions = {}) {
    const env = o.env ?? process.env;
    this.endpoint = (o.endpoint ?? metadataEndpoint(env)).replace(/\/+$/, '');
    this.timeoutMs = o.timeoutMs ?? 2000;
    this.disabled = /^(1|true)$/i.test(env.AWS_EC2_METADATA_DISABLED ?? '');
  }

  /** IMDS version in use once a request was made: 2 with tokens, 1 without. */
  get version(): 1 | 2 | undefined {
    return this.mode;
  }

  private async ready(): Promise<MetadataService> {
    if (this.disabled) throw new MetadataUnreachableError('AWS_EC2_METADATA_DISABLED is set');
    if (this.service) return this.service;
    // Our own retries are none: on a machine that is not an instance, the answer must come quickly.
    const base = { endpoint: this.endpoint, httpOptions: { timeout: this.timeoutMs }, retries: 0 };
    const v2 = new MetadataService(base);
    try {
      await v2.fetchMetadataToken();
      this.mode = 2;
      this.service = v2;
    } catch (err) {
      // 403/404/405: the service does not do IMDSv2 (or refuses it); anything else: nobody answers.
      if (![403, 404, 405].includes(statusOf(err) ?? 0) && !/status code (403|404|405)/.test(String((err as Error)?.message))) {
        throw new MetadataUnreachableError(err);
      }
      this.mode = 1;
      this.service = new MetadataService({ ...base, disableFetchToken: true });
    }
    return this.service;
  }

  /** GET a metadata path; undefined on 404 (the instance has no such value). */
  async get(path: string): Promise<string | undefined> {
    const service = await this.ready();
    try {
      // The service appends the path to the endpoint's own path ("/"): no second slash.
      return await service.request(path.replace(/^\/+/, ''), {});
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new MetadataUnreachableError(err);
    }
  }

  /** True when the service answers at all (the original's instance_data_accessible). */
  async accessible(): Promise<boolean> {
    try {
      return (await this.get('/latest/meta-data/')) !== undefined;
    } catch (err) {
      if (err instanceof MetadataUnreachableError) return false;
      throw err;
    }
  }
}

function lines(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const out = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return out.length ? out : undefined;
}

function single(text: string | undefined): string | undefined {
  const t = text?.trim();
  return t ? t : undefined;
}

/**
 * Reads what a bundle inherits. Block device mappings leave out ebsN entries: those are volumes attached to this
 * instance, not part of the image. Throws MetadataUnreachableError when the service can't be reached.
 */
export async function readInstanceMetadata(client: MetadataClient = new MetadataClient()): Promise<InstanceMetadata> {
  if (!(await client.accessible())) throw new MetadataUnreachableError();
  const base = '/latest/meta-data/';
  const [amiId, ancestors, kernelId, ramdiskId, productCodes, bdmList] = await Promise.all([
    client.get(base + 'ami-id'),
    client.get(base + 'ancestor-ami-ids'),
    client.get(base + 'kernel-id'),
    client.get(base + 'ramdisk-id'),
    client.get(base + 'product-codes'),
    client.get(base + 'block-device-mapping/'),
  ]);
  let blockDeviceMappings: BlockDeviceMapping[] | undefined;
  const virtuals = lines(bdmList)?.map((v) => v.replace(/\/$/, '')).filter((v) => !/^ebs\d*$/.test(v));
  if (virtuals) {
    blockDeviceMappings = [];
    for (const virtual of virtuals) {
      const device = single(await client.get(base + 'block-device-mapping/' + virtual));
      if (device) blockDeviceMappings.push({ virtual, device });
    }
    if (!blockDeviceMappings.length) blockDeviceMappings = undefined;
  }
  return {
    amiId: single(amiId),
    ancestorAmiIds: lines(ancestors),
    kernelId: single(kernelId),
    ramdiskId: single(ramdiskId),
    productCodes: lines(productCodes),
    blockDeviceMappings,
  };
}

/** What a bundle gets: explicit flags win, inherited values fill the rest; the current ami-id joins the ancestry. */
export interface InheritedBundleFields {
  kernelId?: string;
  ramdiskId?: string;
  productCodes?: string[];
  blockDeviceMappings?: BlockDeviceMapping[];
  ancestry?: string[];
}

export interface MergeResult { fields: InheritedBundleFields; inherited: string[]; missing: string[] }

export function mergeInherited(explicit: InheritedBundleFields, md: InstanceMetadata): MergeResult {
  const inherited: string[] = [];
  const missing: string[] = [];
  const note = (name: string, have: unknown) => (have === undefined ? missing : inherited).push(name);

  const ancestry = [...(md.ancestorAmiIds ?? [])];
  if (md.amiId && !ancestry.includes(md.amiId)) ancestry.push(md.amiId);
  note('ami-id', md.amiId);
  note('ancestor-ami-ids', md.ancestorAmiIds);

  const pick = <T>(name: string, flag: T | undefined, value: T | undefined): T | undefined => {
    if (flag !== undefined) return flag;
    note(name, value);
    return value;
  };
  // The service lists product codes one a line; the manifest gets them as one comma-joined entry, like --productcodes.
  const inheritedCodes = md.productCodes ? [md.productCodes.join(',')] : undefined;
  const fields: InheritedBundleFields = {
    kernelId: pick('kernel-id', explicit.kernelId, md.kernelId),
    ramdiskId: pick('ramdisk-id', explicit.ramdiskId, md.ramdiskId),
    productCodes: pick('product-codes', explicit.productCodes, inheritedCodes),
    blockDeviceMappings: pick('block-device-mapping', explicit.blockDeviceMappings, md.blockDeviceMappings),
    ancestry: explicit.ancestry ?? (ancestry.length ? ancestry : undefined),
  };
  return { fields, inherited, missing };
}
