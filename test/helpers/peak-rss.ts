import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './paths.js';
import type { RunResult } from './run.js';

export interface MeasuredRun extends RunResult {
  /** The process's peak resident set (VmHWM), MiB. */
  peakRssMiB: number;
  /** Killed by us: over the RSS limit, or still running at the timeout. */
  killed?: 'rss' | 'timeout';
  elapsedMs: number;
}

const PROBE = join(ROOT, 'test', 'helpers', 'rss-probe.mjs');
const kib = (status: string, field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);

/**
 * Runs one of our commands and measures its peak RSS: /proc/<pid>/status is polled (the process is killed as soon as
 * it goes over `limitMiB`, so a memory bomb cannot take the machine down), and a preloaded probe writes the final
 * VmHWM at exit, which polling could miss. `timeoutMs` kills a hung process.
 */
export function runCliMeasured(name: string, args: string[], opts: { env?: NodeJS.ProcessEnv; limitMiB: number; timeoutMs?: number }): Promise<MeasuredRun> {
  const out = join(tmpdir(), `amitools-rss-${process.pid}-${Math.random().toString(16).slice(2)}`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(PROBE).href, join(ROOT, 'bin', `${name}.js`), ...args], {
      env: { ...process.env, ...opts.env, AMITOOLS_TEST_RSS_FILE: out }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peakKiB = 0;
    let killed: MeasuredRun['killed'];
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const poll = setInterval(() => {
      let status: string;
      try { status = readFileSync(`/proc/${child.pid}/status`, 'utf8'); } catch { return; }
      peakKiB = Math.max(peakKiB, kib(status, 'VmHWM'));
      if (kib(status, 'VmRSS') > opts.limitMiB * 1024) { killed ??= 'rss'; child.kill('SIGKILL'); }
    }, 10);
    const timer = setTimeout(() => { killed ??= 'timeout'; child.kill('SIGKILL'); }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      try { peakKiB = Math.max(peakKiB, Number(readFileSync(out, 'utf8'))); } catch { /* killed: no probe output */ }
      rmSync(out, { force: true });
      resolve({ code, stdout, stderr, peakRssMiB: peakKiB / 1024, killed, elapsedMs: Date.now() - started });
    });
  });
}
