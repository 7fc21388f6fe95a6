import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { InterruptedError, UsageError, errorMessage } from '../errors.js';
import { displayText } from '../format/display.js';
import { abortAllStaged, removeAllStagedSync } from '../stream/atomic-write.js';
import { EXIT_USAGE, cliErrorMessage, exitCodeFor, exitCodeForSignal } from './errors.js';
import { manualText } from './manual.js';
import { abortPrompts } from './prompt.js';
import { fileErrorAction, ioError } from '../io-errors.js';
import { tolerateClosedOutput } from './reporter.js';
import { expandAbbreviations } from './abbreviations.js';
import { ORIGINAL_LONG_OPTIONS } from './original-options.js';
import { COPYRIGHT, TOOL_NAME, TOOL_VERSION } from '../version.js';

/** Flags every command has, as in the original. */
export interface CommonOptions {
  batch?: boolean;
  debug?: boolean;
  manual?: boolean;
  output?: string;
}

/** What a command hands back for `--output json`: printed as one JSON document, with the elapsed time added. */
export type CommandResult = Record<string, unknown>;

const MANDATORY_GROUP = 'Mandatory parameters:';

/** A commander program with the original's common flags (-h --help --version --manual --batch --debug). */
export function createCommand(name: string, summary: string): Command {
  return new Command(name)
    .description(summary)
    .optionsGroup('Optional parameters:')
    .helpOption('-h, --help', 'Display this help message and exit.')
    .version(`${TOOL_NAME} ${TOOL_VERSION}\n${COPYRIGHT}`, '--version', 'Display the version and copyright notice and exit.')
    .option('--manual', 'Display the user manual and exit.')
    .option('--batch', 'Run in batch mode: no prompts, no progress animation.')
    .option('--debug', 'Print debug messages and stack traces.')
    .addOption(new Option('--output <format>', 'text, or json: one JSON document on stdout at the end and nothing else there.').choices(['text', 'json']))
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ outputError: () => {} });
}

/** Lists these flags (e.g. '--image') first, under "Mandatory parameters", in --help, as the original's help does. */
export function markMandatory(cmd: Command, ...flags: string[]): Command {
  for (const flag of [...flags].reverse()) {
    const i = cmd.options.findIndex((o) => o.long === flag);
    if (i < 0) throw new Error(`no option ${flag}`);
    const [opt] = (cmd.options as Option[]).splice(i, 1);
    opt.helpGroup(MANDATORY_GROUP);
    (cmd.options as Option[]).unshift(opt);
  }
  return cmd;
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

/** requireDirectory, and the directory must be writable. */
export function requireWritableDirectory(path: string, flag: string): string {
  requireDirectory(path, flag);
  try {
    accessSync(path, constants.W_OK);
  } catch {
    throw invalidValue(flag, path, 'Directory is not writable.');
  }
  return path;
}

/** The directory a new file at `path` would go in, if it exists and is writable; else undefined. */
export function writableParent(path: string): string | undefined {
  const dir = dirname(resolve(path));
  try {
    accessSync(dir, constants.W_OK);
    return statSync(dir).isDirectory() ? dir : undefined;
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  try { return statSync(path).isFile(); } catch { return false; }
}

const INTERRUPTS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** How long an interrupted command has to stop and remove its partial output before that is done here, at once. */
const INTERRUPT_GRACE_MS = 5000;
const REMOVED = 'removed partial output';

interface Interrupts { signal: AbortSignal; received(): NodeJS.Signals | undefined; dispose(): void }

/**
 * While a command runs, SIGINT/SIGTERM/SIGHUP abort its work through an AbortSignal (the library stops, removes what
 * it wrote under temporary names and rejects) and every open staged group. A second signal, or work that has not
 * stopped within the grace time, gets the synchronous removal and an immediate exit.
 */
function catchInterrupts(): Interrupts {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  let timer: NodeJS.Timeout | undefined;
  const exitNow = (sig: NodeJS.Signals) => {
    removeAllStagedSync();
    process.stderr.write(`interrupted by ${sig}: ${REMOVED}\n`);
    process.exit(exitCodeForSignal(sig));
  };
  const handler = (sig: NodeJS.Signals) => {
    if (received) return exitNow(received);
    received = sig;
    controller.abort(new InterruptedError(REMOVED));
    abortPrompts();
    void abortAllStaged();
    timer = setTimeout(() => exitNow(sig), INTERRUPT_GRACE_MS);
  };
  for (const s of INTERRUPTS) process.on(s, handler);
  return {
    signal: controller.signal,
    received: () => received,
    dispose() {
      clearTimeout(timer);
      for (const s of INTERRUPTS) process.off(s, handler);
    },
  };
}

/** One line for an interrupted command: what the library said the interrupt left, or that partial output is gone. */
async function reportInterrupt(sig: NodeJS.Signals, err: unknown, debug: boolean | undefined): Promise<number> {
  await abortAllStaged();
  const detail = err instanceof InterruptedError ? errorMessage(err) : REMOVED;
  process.stderr.write(`interrupted by ${sig}: ${detail}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  return exitCodeForSignal(sig);
}

/**
 * Parses argv, handles --manual, runs main, and turns any error into one line on stderr and an exit code. main gets
 * an AbortSignal that fires on SIGINT/SIGTERM/SIGHUP: pass it to the library operation. Work that completed despite
 * a late signal exits 0; work that stopped exits 130/143/129.
 */
export async function runCommand<O extends CommonOptions>(
  cmd: Command,
  argv: string[],
  main: (opts: O, cmd: Command, signal: AbortSignal) => Promise<CommandResult | void>,
): Promise<number> {
  let opts: O | undefined;
  const started = Date.now();
  const interrupts = catchInterrupts();
  tolerateClosedOutput();
  try {
    cmd.parse(expandAbbreviations(cmd, argv, ORIGINAL_LONG_OPTIONS[cmd.name()]));
    opts = cmd.opts<O>();
    if (opts.manual) {
      process.stdout.write(manualText(cmd.name()));
      return exit(0);
    }
    const result = await main(opts, cmd, interrupts.signal);
    if (opts.output === 'json') {
      const elapsedSeconds = Math.round((Date.now() - started) / 10) / 100;
      process.stdout.write(JSON.stringify({ command: cmd.name(), ...result, elapsedSeconds }, null, 2) + '\n');
    }
    return exit(0);
  } catch (caught) {
    const err = presentable(caught);
    const sig = interrupts.received();
    if (sig) return exit(await reportInterrupt(sig, err, opts?.debug));
    if (err instanceof CommanderError) {
      if (err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return exit(0);
      process.stderr.write(`${displayText(err.message.replace(/^error: /, ''), true)}\nTry '${cmd.name()} --help'\n`);
      return exit(EXIT_USAGE);
    }
    if (err instanceof UsageError) {
      process.stderr.write(`${displayText(cliErrorMessage(err))}\nTry '${cmd.name()} --help'\n`);
      if (opts?.debug && err.stack) process.stderr.write(displayText(err.stack, true) + '\n');
      return exit(EXIT_USAGE);
    }
    process.stderr.write(`ERROR: ${displayText(cliErrorMessage(err))}\n`);
    if (opts?.debug && err instanceof Error && err.stack) process.stderr.write(displayText(err.stack, true) + '\n');
    return exit(exitCodeFor(err));
  } finally {
    interrupts.dispose();
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
