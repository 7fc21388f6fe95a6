import { constants } from 'node:os';
import { AmiToolsError } from '../errors.js';

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
