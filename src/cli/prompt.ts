import { createInterface } from 'node:readline/promises';

const asking = new Set<AbortController>();

/** Ends every question being asked (after an interrupt): the pending ask() rejects. */
export function abortPrompts(): void {
  for (const c of asking) c.abort();
}

/** True when we may ask the user something: not --batch and a terminal on stdin. */
export function canPrompt(batch: boolean | undefined): boolean {
  return !batch && Boolean(process.stdin.isTTY);
}

/** Asks one question on the terminal; an empty answer gives the default. */
export async function ask(question: string, fallback = ''): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // On a terminal readline takes Ctrl-C as a key: make it the signal it is everywhere else.
  rl.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
  const stop = new AbortController();
  asking.add(stop);
  try {
    const answer = (await rl.question(question, { signal: stop.signal })).trim();
    return answer === '' ? fallback : answer;
  } finally {
    asking.delete(stop);
    rl.close();
  }
}

/** Asks a yes/no question; only an explicit yes counts. */
export async function confirm(question: string): Promise<boolean> {
  return /^y(es)?$/i.test(await ask(question));
}
