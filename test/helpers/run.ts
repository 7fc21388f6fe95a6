import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export interface RunResult { code: number | null; stdout: string; stderr: string }

/** Runs one of our commands (bin/<name>.js, built by the global setup) with no terminal. */
export function runCli(name: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return runProcess(process.execPath, [join(ROOT, 'bin', `${name}.js`), ...args], opts);
}

/** Runs a process to its end; with `timeoutMs`, one still running then is killed and reported `hung`. */
export function runProcess(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult & { hung: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => { hung = true; child.kill('SIGKILL'); }, opts.timeoutMs);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, hung }); });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Runs `source` as an ES module file (written into `dir`) in a Node process of its own, killed as `hung` if it has not
 * exited after `timeoutMs`: for what must let a process exit by itself (worker threads).
 */
export function runNodeScript(dir: string, source: string, timeoutMs = 60_000): Promise<RunResult & { hung: boolean }> {
  const file = join(dir, `script-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, source);
  return runProcess(process.execPath, [file], { timeoutMs });
}

/**
 * Runs one of our commands under GNU time (/usr/bin/time, Debian package `time`): its result and its peak resident
 * set size in bytes, as the kernel counted it (getrusage maxrss), so no peak between two samples is missed.
 */
export async function runCliPeakRss(name: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult & { peakRss: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'amitools-rss-'));
  try {
    const out = join(dir, 'maxrss');
    const r = await runProcess('/usr/bin/time', ['-f', '%M', '-o', out, process.execPath, join(ROOT, 'bin', `${name}.js`), ...args], opts);
    // time writes "Command exited with non-zero status N" before the figure when the command fails.
    const kib = Number(readFileSync(out, 'utf8').trim().split('\n').pop());
    if (!Number.isInteger(kib) || kib <= 0) throw new Error(`no peak RSS from /usr/bin/time for ${name}`);
    return { ...r, peakRss: kib * 1024 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
