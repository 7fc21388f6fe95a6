import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ToolError } from '../errors.js';

/** Everything a root filesystem needs: hard links, ACLs, xattrs, holes, numeric owners, devices and specials. */
export const RSYNC_COPY_FLAGS = ['-aHAXS', '--numeric-ids'];

/** rsync's exit code 24: files vanished while copying a live system; the rest was copied. */
export const RSYNC_VANISHED = 24;

/** rsync escapes unprintable bytes as \#ooo (always under LC_ALL=C): back to the name's bytes. */
export function unescapeRsync(s: string): Buffer {
  return Buffer.from(s.replace(/\\#([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))), 'latin1');
}

export interface RsyncRun { code: number; stderrTail: string[] }

/** Runs rsync, handing each stdout line (raw bytes as latin1) to onLine; keeps the last stderr lines for errors. */
/** With `signal`, rsync is stopped (SIGTERM) when it fires. */
export function runRsync(args: string[], onLine: (line: string) => void, signal?: AbortSignal): Promise<RsyncRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('rsync', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' }, signal });
    const tail: string[] = [];
    child.stdout.setEncoding('latin1');
    child.stderr.setEncoding('latin1');
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', onLine);
    createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (l) => {
      tail.push(l);
      if (tail.length > 5) tail.shift();
    });
    child.on('error', (err: NodeJS.ErrnoException) =>
      reject(new ToolError(err.code === 'ENOENT' ? 'rsync is not installed: install the rsync package' : `rsync failed to start: ${err.message}`)));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stderrTail: tail }));
  });
}
