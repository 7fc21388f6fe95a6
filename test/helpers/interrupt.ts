import { spawn, type ChildProcess } from 'node:child_process';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT } from './paths.js';
import type { RunResult } from './run.js';

/** One of our commands running in the background, its output collected as it comes. */
export interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<RunResult & { signal: NodeJS.Signals | null }>;
}

export function startCli(name: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Running {
  const child = spawn(process.execPath, [join(ROOT, 'bin', `${name}.js`), ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<RunResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/**
 * Waits (polling every few ms) until `ready()` says the command is where we want it, then freezes it with SIGSTOP so
 * the moment does not slip while the test looks around. Fails if the command ended first.
 */
export async function freezeWhen(r: Running, ready: () => boolean, what: string, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (r.child.exitCode !== null || r.child.signalCode !== null) {
      throw new Error(`the command ended before ${what} (exit ${r.child.exitCode ?? r.child.signalCode}): ${r.stderr()}`);
    }
    if (ready()) break;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(3);
  }
  r.child.kill('SIGSTOP');
}

/** Delivers `signal` to a frozen command and lets it run again to handle it. */
export function deliver(r: Running, signal: NodeJS.Signals): void {
  r.child.kill(signal);
  r.child.kill('SIGCONT');
}

/** The names in a directory, sorted ([] if it is gone). */
export function names(dir: string): string[] {
  try { return readdirSync(dir).sort(); } catch { return []; }
}

/** Bytes in the regular files directly in a directory. */
export function bytesIn(dir: string): number {
  let n = 0;
  for (const f of names(dir)) {
    try {
      const st = lstatSync(join(dir, f));
      if (st.isFile()) n += st.size;
    } catch { /* removed meanwhile */ }
  }
  return n;
}

/** Our temporary-name pattern, with the owner's PID. */
export const TEMP_NAME = /^\..*\.amitools-(\d+)-[0-9a-f]{8}\.tmp$/;
