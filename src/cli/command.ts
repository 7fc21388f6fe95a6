import { statSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { UsageError, errorMessage } from '../errors.js';
import { EXIT_USAGE, exitCodeFor } from './errors.js';
import { manualText } from './manual.js';
import { fileErrorAction, ioError } from '../io-errors.js';
import { tolerateClosedOutput } from './reporter.js';
import { COPYRIGHT, TOOL_NAME, TOOL_VERSION } from '../version.js';

/** Flags every command has, as in the original. */
export interface CommonOptions {
  batch?: boolean;
  debug?: boolean;
  manual?: boolean;
}

/** A commander program with the original's common flags (-h --help --version --manual --batch --debug). */
export function createCommand(name: string, summary: string): Command {
  return new Command(name)
    .description(summary)
    .helpOption('-h, --help', 'Display this help message and exit.')
    .version(`${TOOL_NAME} ${TOOL_VERSION}\n${COPYRIGHT}`, '--version', 'Display the version and copyright notice and exit.')
    .option('--manual', 'Display the user manual and exit.')
    .option('--batch', 'Run in batch mode: no prompts, no progress animation.')
    .option('--debug', 'Print debug messages and stack traces.')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ outputError: () => {} });
}

/** Throws the original's "missing mandatory parameter" error when a required flag is absent. */
export function requireOption<T>(value: T | undefined, flag: string): T {
  if (value === undefined || value === null || value === '') throw new UsageError(`missing mandatory parameter: ${flag}`);
  return value;
}

/** The original's wording for a flag whose value is unusable. */
export function invalidValue(flag: string, value: string, reason: string): UsageError {
  return new UsageError(`${flag} has invalid value '${value}': ${reason}`);
}

/** Checks that a flag names an existing regular file, with the original's wording. */
export function requireFile(path: string | undefined, flag: string): string {
  const p = requireOption(path, flag);
  if (!isFile(p)) throw invalidValue(flag, p, 'File does not exist or is not a file.');
  return p;
}

export function requireDirectory(path: string, flag: string): string {
  let ok = false;
  try { ok = statSync(path).isDirectory(); } catch { /* reported below */ }
  if (!ok) throw invalidValue(flag, path, 'Directory does not exist or is not a directory.');
  return path;
}

function isFile(path: string): boolean {
  try { return statSync(path).isFile(); } catch { return false; }
}

/** Parses argv, handles --manual, runs main, and turns any error into one line on stderr and an exit code. */
export async function runCommand<O extends CommonOptions>(
  cmd: Command,
  argv: string[],
  main: (opts: O, cmd: Command) => Promise<void>,
): Promise<number> {
  let opts: O | undefined;
  tolerateClosedOutput();
  try {
    cmd.parse(argv);
    opts = cmd.opts<O>();
    if (opts.manual) {
      process.stdout.write(manualText(cmd.name()));
      return exit(0);
    }
    await main(opts, cmd);
    return exit(0);
  } catch (caught) {
    const err = presentable(caught);
    if (err instanceof CommanderError) {
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return exit(0);
      process.stderr.write(`${err.message.replace(/^error: /, '')}\nTry '${cmd.name()} --help'\n`);
      return exit(EXIT_USAGE);
    }
    if (err instanceof UsageError) {
      process.stderr.write(`${errorMessage(err)}\nTry '${cmd.name()} --help'\n`);
      if (opts?.debug && err.stack) process.stderr.write(err.stack + '\n');
      return exit(EXIT_USAGE);
    }
    process.stderr.write(`ERROR: ${errorMessage(err)}\n`);
    if (opts?.debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    return exit(exitCodeFor(err));
  }
}

/**
 * The error as it may be shown: an unknown option named without its value (`--secret-key=VALUE`, `-xVALUE`: the
 * value may be a secret); a raw system error that no caller put into words (EISDIR, ENOSPC…) as a sentence.
 */
function presentable(err: unknown): unknown {
  if (err instanceof CommanderError && err.code === 'commander.unknownOption') {
    err.message = err.message.replace(/'(-[^']*)'/g, (_all, flag: string) =>
      `'${flag.startsWith('--') ? flag.replace(/=.*$/s, '') : flag.slice(0, 2)}'`);
    return err;
  }
  const action = fileErrorAction(err);
  return action ? ioError(err, undefined, action) : err;
}

function exit(code: number): number {
  return code;
}

/** Exits once stdout and stderr are flushed (a pipe may still hold buffered lines): what bin/ calls. */
export function exitAfterFlush(code: number): Promise<never> {
  return new Promise(() => {
    let pending = 2;
    const done = () => { if (--pending === 0) process.exit(code); };
    process.stdout.write('', done);
    process.stderr.write('', done);
  });
}
