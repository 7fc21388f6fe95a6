import { Transform } from 'node:stream';

/** Destroys the stream when no byte has come for `ms`: a stalled body must not hang a transfer. */
export function idleWatchdog(ms: number, what: string): Transform {
  let timer: NodeJS.Timeout;
  const t: Transform = new Transform({
    transform(chunk, _enc, cb) { timer.refresh(); cb(null, chunk); },
    flush(cb) { clearTimeout(timer); cb(); },
    destroy(err, cb) { clearTimeout(timer); cb(err); },
  });
  timer = setTimeout(() => t.destroy(Object.assign(new Error(`no data for ${ms / 1000}s while reading ${what}`), { name: 'TimeoutError' })), ms);
  return t;
}
