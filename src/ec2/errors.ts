import { ToolError, type ErrorCode } from '../errors.js';

const DENIED = /^(AuthFailure|UnauthorizedOperation|InvalidClientTokenId|SignatureDoesNotMatch|OptInRequired|Blocked)$/;
const NETWORK = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH|TimeoutError|socket hang up/;

function parts(err: unknown): { name: string; text: string } {
  const e = err as { name?: string; message?: string; code?: string };
  return { name: (e?.name && e.name !== 'Error' ? e.name : e?.code) ?? '', text: (e?.message ?? String(err)).split('\n')[0]!.trim() };
}

/** The error's class: refused credentials or permission, no answer from EC2, or anything else EC2 said. */
export function ec2ErrorCode(err: unknown): ErrorCode {
  const { name, text } = parts(err);
  if (DENIED.test(name) || name === 'CredentialsProviderError') return 'EC2_ACCESS_DENIED';
  if (NETWORK.test(`${name} ${text}`)) return 'EC2_NETWORK';
  return 'EC2_ERROR';
}

/**
 * The SDK's error as one line (the EC2 code, then its message), with what to do for the usual causes. `action` is
 * the API call, so a missing permission names it (ec2:RegisterImage).
 */
export function ec2ErrorLine(err: unknown, action?: string): string {
  const { name, text } = parts(err);
  const line = name && !text.includes(name) ? `${name}: ${text}` : text;
  if (name === 'CredentialsProviderError') return `${line}; give -a and -s, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`;
  if (name === 'UnauthorizedOperation') return `${line}; the credentials lack the ${action ? `ec2:${action}` : 'EC2'} permission: grant it in IAM`;
  if (DENIED.test(name)) return `${line}; check the credentials (-a/-s or the AWS environment)`;
  if (NETWORK.test(`${name} ${text}`)) return `${line}; check the network, the region and the EC2 endpoint ($AWS_ENDPOINT_URL_EC2, $AMITOOLS_EC2_ENDPOINT)`;
  return line;
}

/** A ToolError for a failed EC2 call: `what` failed, then the one-line reason and the hint for its EC2 code, if any. */
export function ec2Error(err: unknown, what: string, action?: string, hints: Record<string, string> = {}): ToolError {
  const hint = hints[parts(err).name];
  return new ToolError(`${what}: ${ec2ErrorLine(err, action)}${hint ? `; ${hint}` : ''}`, { cause: err, code: ec2ErrorCode(err) });
}
