import { ToolError, type ErrorCode } from '../errors.js';

const DENIED = /^(AccessDeniedException|UnrecognizedClientException|InvalidSignatureException|ExpiredTokenException|CredentialsProviderError)$/;
const NETWORK = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|ENETUNREACH|TimeoutError|socket hang up/;

/** An EBS direct API failure as one line: `what` failed, the error's name and message, and what to do for the usual causes. */
export function ebsError(err: unknown, what: string, action: string): ToolError {
  if (err instanceof ToolError) return err;
  const e = err as { name?: string; message?: string; code?: string; Reason?: string };
  const name = (e?.name && e.name !== 'Error' ? e.name : e?.code) ?? '';
  const text = (e?.message ?? String(err)).split('\n')[0]!.trim();
  let line = name && !text.includes(name) ? `${name}: ${text}` : text;
  if (e?.Reason && !line.includes(e.Reason)) line += ` (${e.Reason})`;
  let code: ErrorCode = 'EBS_ERROR';
  if (name === 'CredentialsProviderError') {
    line += '; give -a and -s, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY';
    code = 'EBS_ACCESS_DENIED';
  } else if (name === 'AccessDeniedException') {
    line += `; the credentials lack the ebs:${action} permission (or the KMS key's): grant it in IAM`;
    code = 'EBS_ACCESS_DENIED';
  } else if (DENIED.test(name)) {
    line += '; check the credentials (-a/-s or the AWS environment)';
    code = 'EBS_ACCESS_DENIED';
  } else if (NETWORK.test(`${name} ${text}`)) {
    line += '; check the network, the region and the EBS endpoint ($AWS_ENDPOINT_URL_EBS)';
    code = 'EBS_NETWORK';
  }
  return new ToolError(`${what}: ${line}`, { cause: err, code });
}
