import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export interface RunResult { code: number | null; stdout: string; stderr: string }

/** Runs one of our commands (bin/<name>.js, built by the global setup) with no terminal. */
export function runCli(name: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return runProcess(process.execPath, [join(ROOT, 'bin', `${name}.js`), ...args], opts);
}

export function runProcess(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
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
