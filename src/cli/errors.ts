import { constants } from 'node:os';
import { AmiToolsError, errorMessage } from '../errors.js';

// Exit codes follow the original tools: 1 for bad parameters, 254 for failures at run time.
export const EXIT_USAGE = 1;
export const EXIT_RUNTIME = 254;

/** The exit code after an interrupting signal, as a shell reports one: 128 + its number (SIGINT 130, SIGTERM 143, SIGHUP 129). */
export function exitCodeForSignal(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/** The exit code for an error the library threw. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof AmiToolsError && err.code === 'INVALID_OPTION') return EXIT_USAGE;
  return EXIT_RUNTIME;
}

/** The flag that sets each library option the library's errors name (flag wording lives here, not in the library). */
const FLAG_FOR_OPTION: Readonly<Record<string, string>> = {
  ec2CertPath: '--ec2cert',
  bucket: '--bucket',
  profile: '--profile',
  region: '--region',
  keepEc2Key: '--keep-ec2-key',
  destination: '--destination',
  sizeMB: '--size',
  accessKey: '--access-key',
  secretKey: '--secret-key',
  fixFstab: '--keep-fstab',
};

/** An error's one-line message, with the option it is about named by its flag. */
export function cliErrorMessage(err: unknown): string {
  const flag = err instanceof AmiToolsError && err.option !== undefined ? FLAG_FOR_OPTION[err.option] : undefined;
  if (flag === undefined) return errorMessage(err);
  const e = err as AmiToolsError;
  if (e.invalid) return `${flag} has invalid value '${e.invalid.value}': ${e.invalid.reason}`;
  return `${errorMessage(err)} (${flag})`;
}
