import { createInterface } from 'node:readline/promises';

/** True when we may ask the user something: not --batch and a terminal on stdin. */
export function canPrompt(batch: boolean | undefined): boolean {
  return !batch && Boolean(process.stdin.isTTY);
}

/** Asks one question on the terminal; an empty answer gives the default. */
export async function ask(question: string, fallback = ''): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(question)).trim();
    return answer === '' ? fallback : answer;
  } finally {
    rl.close();
  }
}

/** Asks a yes/no question; only an explicit yes counts. */
export async function confirm(question: string): Promise<boolean> {
  return /^y(es)?$/i.test(await ask(question));
}
