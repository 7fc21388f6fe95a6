import type { Ora } from 'ora';
import { displayText } from '../format/display.js';

const guarded = new WeakSet<NodeJS.WriteStream>();
const closed = new WeakSet<NodeJS.WriteStream>();

/**
 * A reader that went away (`cmd | head -1`, a closed terminal) is not a failure of the job: from the first write
 * error on stdout or stderr (EPIPE, EIO…) that stream is left alone — later lines are dropped — and the job goes
 * on to its normal end. Without this listener the error would be an uncaught exception with a stack trace.
 */
export function tolerateClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on('error', () => { closed.add(stream); });
  }
}

/** Writes to stdout or stderr unless the reader has gone. */
export function writeTo(stream: NodeJS.WriteStream, text: string): void {
  if (!closed.has(stream) && !stream.destroyed) stream.write(text);
}

/** Human-readable byte count (binary units). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Seconds as a short duration: 45s, 3m05s, 1h02m. */
export function formatDuration(secs: number): string {
  const s = Math.max(0, Math.round(secs));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The live line: `Uploading 12.0 MiB of 30.0 MiB (40%), 4.0 MiB/s, 5s left, 1/3 parts`. */
export function progressText(label: string, doneBytes: number, totalBytes: number | undefined, seconds: number, extra?: string): string {
  const secs = Math.max(seconds, 0.001);
  const of = totalBytes ? ` of ${formatBytes(totalBytes)}` : '';
  const pct = totalBytes ? ` (${Math.floor((doneBytes / totalBytes) * 100)}%)` : '';
  const rate = doneBytes / secs;
  // No estimate from the first second or so: the rate is noise until then.
  const eta = totalBytes && doneBytes > 0 && secs >= 1 ? `, ${formatDuration((totalBytes - doneBytes) / rate)} left` : '';
  return `${label} ${formatBytes(doneBytes)}${of}${pct}, ${formatBytes(rate)}/s${eta}${extra ? `, ${extra}` : ''}`;
}

/**
 * Where a command's output goes. Plain lines on stdout in --batch or when stdout is not a terminal
 * (what scripts parse); on a terminal the same lines plus one live ora progress line. With --output json the lines
 * are left out (stdout holds only the final document) and the live line, if any, goes to stderr.
 */
export class Reporter {
  private spinner: Ora | undefined;
  private pendingText: string | undefined; // progress reported before ora was loaded, and not stopped since
  private started: number | undefined; // the first progress call, so time spent at a prompt doesn't count
  readonly interactive: boolean;
  private readonly quiet: boolean;
  /** Where line() writes: stdout, unless stdout carries data (ec2-unbundle -o -). */
  private readonly lines: NodeJS.WriteStream;

  constructor(opts: { batch?: boolean; output?: string; stream?: NodeJS.WriteStream; lines?: NodeJS.WriteStream } = {}) {
    this.quiet = opts.output === 'json';
    this.lines = opts.lines ?? process.stdout;
    const stream = opts.stream ?? (this.quiet ? process.stderr : process.stdout);
    // A terminal that reports no width (e.g. script(1) without a window size) can't hold a redrawn line.
    this.interactive = !opts.batch && Boolean(stream.isTTY) && (stream.columns ?? 0) > 0;
    // ora and its dependencies take ~40 ms to load: only on a terminal, and without holding up the command.
    if (this.interactive) {
      void import('ora').then(({ default: ora }) => {
        this.spinner = ora({ stream, discardStdin: false });
        if (this.pendingText !== undefined) this.spinner.start(this.pendingText);
      }, () => undefined); // no live line then; the plain lines still go out
    }
  }

  /**
   * A line of the command's normal output. Lines often hold names from inputs (manifests, tar members, buckets):
   * control characters are shown escaped, line by line, so no input can drive the terminal.
   */
  line(text: string): void {
    if (this.quiet) return;
    text = displayText(text, true);
    if (this.spinner?.isSpinning) {
      this.spinner.clear();
      writeTo(this.lines, text + '\n');
      this.spinner.render();
    } else {
      writeTo(this.lines, text + '\n');
    }
  }

  /** A warning, on stderr. */
  warn(text: string): void {
    text = displayText(text, true);
    const spinning = this.spinner?.isSpinning;
    if (spinning) this.spinner!.clear();
    writeTo(process.stderr, text + '\n');
    if (spinning) this.spinner!.render();
  }

  /** Updates the live line (terminal only): what is being done, bytes so far, the rate and the time left. */
  progress(label: string, doneBytes: number, totalBytes?: number, extra?: string): void {
    if (!this.interactive) return;
    this.started ??= Date.now();
    const text = progressText(label, doneBytes, totalBytes, (Date.now() - this.started) / 1000, extra);
    if (!this.spinner) this.pendingText = text;
    else if (!this.spinner.isSpinning) this.spinner.start(text);
    else this.spinner.text = text;
  }

  /** Stops the live line. */
  stop(): void {
    this.pendingText = undefined;
    this.spinner?.stop();
  }
}

/** Retries of S3 and EC2 requests, announced on stderr the same way. */
export function announceRetry(reporter: Reporter) {
  return (what: string, attempt: number, attempts: number, delayMs: number, reason: string): void =>
    reporter.warn(`Retrying ${what} in ${(delayMs / 1000).toFixed(1)}s (attempt ${attempt + 1} of ${attempts}): ${reason}`);
}
