import type { Command } from 'commander';
import { UsageError } from '../errors.js';

/** A long option's name (without "--") and whether it takes a value from the next argument. */
interface LongOption { name: string; takesValue: boolean }

function longOptions(cmd: Command): LongOption[] {
  const out: LongOption[] = [{ name: 'help', takesValue: false }];
  for (const o of cmd.options) if (o.long) out.push({ name: o.long.slice(2), takesValue: o.required || o.optional });
  return out;
}

/** The full name for a long option or a unique prefix of one; a prefix unique among `preferred` wins over ours. */
function resolveLong(name: string, options: LongOption[], preferred: readonly string[]): LongOption | undefined {
  const exact = options.find((o) => o.name === name);
  if (exact) return exact;
  const candidates = options.filter((o) => o.name.startsWith(name));
  if (candidates.length <= 1) return candidates[0];
  const original = candidates.filter((o) => preferred.includes(o.name));
  if (original.length === 1) return original[0];
  throw new UsageError(`ambiguous option '--${name}': it could be ${candidates.map((o) => `--${o.name}`).join(', ')}`);
}

/**
 * Expands unique abbreviations of long options (`--dest` for `--destination`), which the original's option parser
 * accepts and commander does not. Values are never touched: the argument after an option that takes one is copied
 * as it is, and so is everything after `--`. An unknown name is left for commander to report.
 */
export function expandAbbreviations(cmd: Command, argv: string[], preferred: readonly string[] = []): string[] {
  const options = longOptions(cmd);
  const shortTakesValue = new Map<string, boolean>();
  for (const o of cmd.options) if (o.short) shortTakesValue.set(o.short.slice(1), o.required || o.optional);
  const out = argv.slice(0, 2);
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') { out.push(...argv.slice(i)); break; }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const opt = resolveLong(name, options, preferred);
      out.push(opt ? `--${opt.name}${eq < 0 ? '' : arg.slice(eq)}` : arg);
      if (opt?.takesValue && eq < 0 && i + 1 < argv.length) out.push(argv[++i]);
    } else if (arg.startsWith('-') && arg.length > 1) {
      out.push(arg);
      // -abc: flags until one takes a value; the rest of the word is that value, or else the next argument is.
      for (let j = 1; j < arg.length; j++) {
        if (!shortTakesValue.get(arg[j])) continue;
        if (j === arg.length - 1 && i + 1 < argv.length) out.push(argv[++i]);
        break;
      }
    } else {
      out.push(arg);
    }
  }
  return out;
}
