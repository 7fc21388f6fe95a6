import type { AwsCredentialIdentity } from '@smithy/types';
import { UsageError } from '../errors.js';
import type { AwsProfile } from './config.js';

/** Credentials from the command line, as the original's -a/-s/-t give them. */
export interface CredentialFlags {
  accessKey?: string;
  secretKey?: string;
  delegationToken?: string;
}

/**
 * Credentials: the flags (-a and -s together); else, unless --profile names a profile, AWS_ACCESS_KEY_ID/
 * AWS_SECRET_ACCESS_KEY with AWS_SESSION_TOKEN or the original's AWS_DELEGATION_TOKEN (the AWS CLI's order: keys in
 * the environment win over AWS_PROFILE, --profile wins over them); else none, so the SDK's default chain applies with
 * the profile (its keys, SSO, a role to assume, credential_process) or the instance role. `source` says where they
 * came from, for --debug; the secret itself is never printed.
 */
export function resolveCredentials(flags: CredentialFlags, env: NodeJS.ProcessEnv = process.env, profile?: AwsProfile): { credentials?: AwsCredentialIdentity; source: string } {
  // The SDK's notice about Node 20's end of support would be a second, unrelated line on stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  if (flags.accessKey || flags.secretKey) {
    if (!flags.accessKey || !flags.secretKey) {
      throw new UsageError('credentials need both an access key ID and a secret access key', { option: flags.accessKey ? 'secretKey' : 'accessKey' });
    }
    return { credentials: { accessKeyId: flags.accessKey, secretAccessKey: flags.secretKey, sessionToken: flags.delegationToken }, source: 'command line' };
  }
  if (profile?.named !== 'flag' && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    const token = flags.delegationToken ?? env.AWS_SESSION_TOKEN ?? env.AWS_DELEGATION_TOKEN;
    return { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: token || undefined }, source: 'environment' };
  }
  if (profile?.named) return { source: `profile ${profile.name} (${profile.named === 'flag' ? '--profile' : 'AWS_PROFILE'}), through the SDK's chain` };
  return { source: 'SDK default chain (profile, AWS_PROFILE, SSO, instance role)' };
}
