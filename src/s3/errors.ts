import { ToolError } from '../errors.js';

/** What we were doing when S3 failed: used to name the object and infer the missing permission. */
export interface S3Context {
  action: 'HeadBucket' | 'GetBucketLocation' | 'CreateBucket' | 'PutObject' | 'CopyObject' | 'GetObject' | 'ListObjects' | 'DeleteObject' | 'DeleteBucket';
  bucket: string;
  key?: string;
  region: string;
}

const PERMISSION: Record<S3Context['action'], string> = {
  HeadBucket: 's3:ListBucket',
  GetBucketLocation: 's3:GetBucketLocation',
  CreateBucket: 's3:CreateBucket',
  PutObject: 's3:PutObject',
  CopyObject: 's3:GetObject and s3:PutObject',
  GetObject: 's3:GetObject',
  ListObjects: 's3:ListBucket',
  DeleteObject: 's3:DeleteObject',
  DeleteBucket: 's3:DeleteBucket',
};

interface SdkError {
  name?: string; Code?: string; code?: string; message?: string;
  Region?: string; Endpoint?: string; BucketName?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string>; statusCode?: number };
}

function what(ctx: S3Context): string {
  return ctx.key ? `s3://${ctx.bucket}/${ctx.key}` : `bucket ${ctx.bucket}`;
}

/** The S3 error code of an SDK error ('NoSuchBucket', 'AccessDenied', …), or undefined for network errors. */
export function s3ErrorCode(err: unknown): string | undefined {
  const e = err as SdkError;
  if (!e || typeof e !== 'object' || !e.$metadata) return undefined;
  const code = e.Code ?? e.name;
  if (code && code !== 'Error' && code !== 'UnknownError' && code !== 'S3ServiceException') return code;
  const status = e.$metadata.httpStatusCode;
  if (status === 404) return 'NotFound';
  if (status === 403) return 'Forbidden';
  if (status === 301 || status === 307) return 'PermanentRedirect';
  return status ? `HTTP${status}` : undefined;
}

const TLS_CODES = /^(CERT_|UNABLE_TO_(GET|VERIFY)|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_CERT|HOSTNAME_MISMATCH)/;
const WHERE = 'the endpoint (--url/--endpoint-url, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, --region), the proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and the network';

/** A network-level failure (no HTTP answer) as what happened and what to check. */
export function networkProblem(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string; address?: string; port?: number; hostname?: string };
  const code = e?.code ?? '';
  const at = e?.hostname ?? (e?.address ? `${e.address}${e.port ? `:${e.port}` : ''}` : undefined);
  if (code === 'ECONNREFUSED') return `nothing accepts connections at ${at ?? 'the endpoint'} (ECONNREFUSED); check ${WHERE}`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `the host name ${at ?? 'of the endpoint'} does not resolve (${code}); check ${WHERE}`;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `${at ?? 'the endpoint'} cannot be reached (${code}); check ${WHERE}`;
  if (TLS_CODES.test(code)) return `the server's TLS certificate is not trusted (${code}); check AWS_CA_BUNDLE or the profile's ca_bundle, and ${WHERE}`;
  if (e?.name === 'TimeoutError' || code === 'ETIMEDOUT') return `no answer in time (${code || 'timed out'}); check ${WHERE}, or raise --timeout and use --retry`;
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(e?.message ?? '')) return `the connection was closed before an answer (${code || 'socket hang up'}); try again with --retry, and check ${WHERE}`;
  return `${code ? `${code}: ` : ''}${(e?.message ?? String(err)).split('\n')[0]}; check ${WHERE}`;
}

/** One clear line (as a ToolError) for an S3 failure: what failed, why, and what to do. */
export function describeS3Error(err: unknown, ctx: S3Context): ToolError {
  const e = err as SdkError;
  const code = s3ErrorCode(err);
  const status = e?.$metadata?.httpStatusCode;
  const on = `${ctx.action} on ${what(ctx)}`;
  let msg: string;
  switch (code) {
    case 'InvalidAccessKeyId':
      msg = `${on} failed: S3 does not know the access key id (InvalidAccessKeyId); check -a/--access-key or AWS_ACCESS_KEY_ID, and --url`;
      break;
    case 'SignatureDoesNotMatch':
      msg = `${on} failed: the request signature does not match (SignatureDoesNotMatch); check -s/--secret-key or AWS_SECRET_ACCESS_KEY (and --sigv for this server)`;
      break;
    case 'InvalidToken':
    case 'ExpiredToken':
    case 'TokenRefreshRequired':
      msg = `${on} failed: the session token is invalid or expired (${code}); refresh -t/--delegation-token or AWS_SESSION_TOKEN`;
      break;
    case 'NoSuchBucket':
      msg = `bucket ${ctx.bucket} does not exist (NoSuchBucket); check -b/--bucket${ctx.action === 'PutObject' ? '' : ' (ec2-upload-bundle creates it)'}`;
      break;
    case 'NoSuchKey':
    case 'NotFound':
      msg = `${what(ctx)} does not exist (${code}); check -b/--bucket, the key prefix and -m/-p`;
      break;
    case 'AccessControlListNotSupported':
      msg = `bucket ${ctx.bucket} has ACLs disabled (AccessControlListNotSupported), but EC2 needs the aws-exec-read ACL on the bundle: ` +
        `set the bucket's Object Ownership to "Bucket owner preferred" (aws s3api put-bucket-ownership-controls --bucket ${ctx.bucket} ` +
        `--ownership-controls 'Rules=[{ObjectOwnership=BucketOwnerPreferred}]')`;
      break;
    case 'AccessDenied':
    case 'Forbidden':
    case 'AllAccessDisabled': {
      const perm = ctx.action === 'PutObject' ? 's3:PutObject and s3:PutObjectAcl' : PERMISSION[ctx.action];
      msg = `${on} was denied (${code === 'Forbidden' ? 'HTTP 403' : code}): the credentials need ${perm} on ${ctx.key ? `arn:aws:s3:::${ctx.bucket}/*` : `arn:aws:s3:::${ctx.bucket}`}`;
      break;
    }
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
    case 'TemporaryRedirect': {
      const region = e.Region ?? e.$response?.headers?.['x-amz-bucket-region'];
      msg = region
        ? `bucket ${ctx.bucket} is in region ${region}, not ${ctx.region} (${code}); run again with --region ${region}`
        : `bucket ${ctx.bucket} is not in region ${ctx.region} (${code}${e.Endpoint ? `, endpoint ${e.Endpoint}` : ''}); pass the bucket's region with --region`;
      break;
    }
    case 'InvalidLocationConstraint':
      msg = `${on} failed: the endpoint refuses location ${ctx.region} (InvalidLocationConstraint); use the endpoint of that region with --url, or another --region`;
      break;
    case 'BucketAlreadyExists':
      msg = `bucket ${ctx.bucket} already exists and belongs to another account (BucketAlreadyExists); choose another bucket name`;
      break;
    case 'BadDigest':
    case 'InvalidDigest':
      msg = `${on} failed: the server computed another MD5 for the data than we sent (${code}); the data changed in transit or on disk, try again`;
      break;
    case 'InvalidArgument':
      msg = `${on} failed: the server refused an argument (InvalidArgument: ${e.message ?? ''}); if it names the ACL, this server does not support that canned ACL: try --acl`;
      break;
    case 'BucketNotEmpty':
      msg = `bucket ${ctx.bucket} is not empty (BucketNotEmpty), so it was kept; delete the remaining objects first`;
      break;
    default: {
      if ((err as Error)?.name === 'CredentialsProviderError') {
        msg = `no AWS credentials found for ${on}: pass -a/--access-key and -s/--secret-key, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure a profile (--profile, AWS_PROFILE) or an instance role`;
      } else if (status === undefined) {
        // No HTTP answer (the SDK may still attach an empty $metadata): say what the network refused and what to check.
        msg = `${on} failed: ${networkProblem(err)}`;
      } else {
        msg = `${on} failed: ${code ?? 'error'}${status ? ` (HTTP ${status})` : ''}${e.message && e.message !== code && !/^UnknownError$/.test(e.message) ? `: ${e.message}` : ''}`;
      }
    }
  }
  const out = new ToolError(msg, { cause: err });
  (out as ToolError & { s3Code?: string }).s3Code = code;
  return out;
}
