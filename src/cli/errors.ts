// Exit codes follow the original tools: 1 for bad parameters, 254 for failures at run time.
export const EXIT_USAGE = 1;
export const EXIT_RUNTIME = 254;

/** A bad flag or argument: the user must change the command line. */
export class UsageError extends Error {
  readonly exitCode = EXIT_USAGE;
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure while doing the work (bad input data, I/O, crypto, network). */
export class ToolError extends Error {
  readonly exitCode = EXIT_RUNTIME;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ToolError';
  }
}

/** The message of any thrown value, on one line. */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
