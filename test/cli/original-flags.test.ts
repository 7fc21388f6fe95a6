// Drop-in for the original's command lines: every flag of 1.5.3 (read from its --help output), the README's comparison
// table, unique abbreviations as the original's option parser takes them.
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ORIGINAL_HELP, ROOT, key, reference } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { ORIGINAL_LONG_OPTIONS } from '../../src/cli/original-options.js';

interface Flag { short?: string; long: string }

/** The options of one original --help: `-c, --cert PATH`, `    --ec2cert PATH`, `--[no-]inherit` (both names). */
function originalFlags(command: string): Flag[] {
  const text = readFileSync(join(ORIGINAL_HELP, `${command}.txt`), 'utf8');
  const flags: Flag[] = [];
  for (const m of text.matchAll(/^ {4}(?:(-[a-zA-Z]), | {4})--(\[no-\])?([a-z0-9-]+)/gm)) {
    flags.push({ short: m[1], long: `--${m[3]}` });
    if (m[2]) flags.push({ long: `--no-${m[3]}` });
  }
  return flags;
}

const COMMANDS = readdirSync(ORIGINAL_HELP).filter((f) => f.endsWith('.txt')).map((f) => f.replace(/\.txt$/, ''));

/** Our --help: every option as short/long. */
async function ourFlags(command: string): Promise<Flag[]> {
  const r = await runCli(command, ['--help']);
  expect(r.code).toBe(0);
  return [...r.stdout.matchAll(/^ {2}(?:(-[a-zA-Z]), )?(--[a-z0-9-]+)/gm)].map((m) => ({ short: m[1], long: m[2] }));
}

/** The README's table rows: which commands, which flags, same/changed/added. */
function readmeRows(): { commands: string[]; flags: Flag[]; status: string }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Flags compared with the original'));
  const table = section.slice(0, section.indexOf('\n## '));
  return table.split('\n').filter((l) => /^\| (every command|ec2-)/.test(l)).map((line) => {
    const [, commands, flags, status] = line.split('|').map((c) => c.trim());
    return {
      commands: commands === 'every command' ? COMMANDS : commands.split(',').map((c) => c.trim()),
      flags: [...flags.matchAll(/`(?:(-[a-zA-Z]), )?(--[a-z0-9-]+)`/g)].map((m) => ({ short: m[1], long: m[2] })),
      status,
    };
  });
}

describe('the original option list', () => {
  it('src/cli/original-options.ts lists exactly the long options of each original --help', () => {
    for (const c of COMMANDS) expect([...ORIGINAL_LONG_OPTIONS[c]!].sort(), c).toEqual(originalFlags(c).map((f) => f.long.slice(2)).sort());
  });
});

describe.each(COMMANDS)('%s', (command) => {
  it('has every flag of the original, with the same short letter', async () => {
    const ours = await ourFlags(command);
    for (const f of originalFlags(command)) {
      const mine = ours.find((o) => o.long === f.long);
      expect(mine, `${command} ${f.long}`).toBeDefined();
      expect(mine!.short, `${command} ${f.long}`).toBe(f.short);
    }
  });

  it('the README table names every original flag as same or changed, and every flag we added as added', async () => {
    const rows = readmeRows().filter((r) => r.commands.includes(command));
    const status = (long: string) => rows.filter((r) => r.flags.some((f) => f.long === long)).map((r) => r.status);
    const original = originalFlags(command);
    for (const f of original) expect(status(f.long), `${command} ${f.long}`).toEqual([expect.stringMatching(/^(same|changed)$/)]);
    for (const f of await ourFlags(command)) {
      if (original.some((o) => o.long === f.long)) continue;
      // The original's common flags are in every command's help but not in ec2-ami-tools-version's fixture.
      expect(status(f.long), `${command} ${f.long}`).toHaveLength(1);
      if (command !== 'ec2-ami-tools-version') expect(status(f.long), `${command} ${f.long}`).toEqual(['added']);
    }
  });
});

describe('abbreviated long options, as the original takes them', () => {
  const work = scratch('abbrev');

  it('expands a unique prefix (--dest, --priv, --mani, --sou) and runs', async () => {
    const r = await runCli('ec2-unbundle', ['--priv', key('user-key.pem'), '--mani', reference('tiny', 'tiny.img.manifest.xml'),
      '--sou', reference('tiny'), '--dest', work.dir, '--batch']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(work.dir)).toEqual(['tiny.img']);
    work.cleanup();
  });

  it('keeps values that look like options, and --name=value', async () => {
    const r = await runCli('ec2-bundle-image', ['--image=/nonexistent/--dest', '-c', key('user-cert.pem'), '--priv', key('user-key.pem'), '-u', '123456789012', '--batch']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^--image has invalid value '\/nonexistent\/--dest'/);
  });

  it('refuses an ambiguous prefix, naming the candidates', async () => {
    const r = await runCli('ec2-unbundle', ['--de', '/tmp']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("ambiguous option '--de': it could be --debug, --destination, --device-zeroed, --delegation-token\nTry 'ec2-unbundle --help'\n");
  });

  it("prefers the original's flag when only a flag we added makes the prefix ambiguous (--pa is --part)", async () => {
    const r = await runCli('ec2-upload-bundle', ['-b', 'b', '-m', '/nonexistent.xml', '--pa', 'x', '--batch']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^--part has invalid value 'x'/);
  });

  it('ec2-bundle-vol accepts --no-size-checks (and its abbreviation) and then lets -s exceed 10240', async () => {
    const refused = await runCli('ec2-bundle-vol', ['-s', '20000', '--clone-only', '-v', '/nonexistent', '--batch']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^--size has invalid value '20000'/);
    for (const flag of ['--no-size-checks', '--no-size']) {
      const r = await runCli('ec2-bundle-vol', [flag, '-s', '20000', '--clone-only', '-v', '/nonexistent', '--batch']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).not.toMatch(/--size has invalid value|unknown option/);
    }
  });
});

describe('--help marks the mandatory flags', () => {
  it.each(COMMANDS.filter((c) => c !== 'ec2-ami-tools-version'))('%s lists the original\'s mandatory flags under "Mandatory parameters"', async (command) => {
    const text = readFileSync(join(ORIGINAL_HELP, `${command}.txt`), 'utf8');
    const mandatory = text.slice(text.indexOf('MANDATORY PARAMETERS'), text.indexOf('OPTIONAL PARAMETERS'));
    // -a/-s/-t are optional with us (the SDK's credential chain): the others must be listed as mandatory.
    const expected = [...mandatory.matchAll(/--([a-z-]+)/g)].map((m) => `--${m[1]}`)
      .filter((f) => !['--access-key', '--secret-key', '--delegation-token'].includes(f) && !(command === 'ec2-download-bundle' && f === '--privatekey'));
    const help = (await runCli(command, ['--help'])).stdout;
    const group = help.slice(help.indexOf('Mandatory parameters:'), help.indexOf('Optional parameters:'));
    expect(help.indexOf('Mandatory parameters:')).toBeGreaterThan(0);
    expect([...group.matchAll(/^ {2}(?:-[a-zA-Z], )?(--[a-z-]+)/gm)].map((m) => m[1])).toEqual(expected);
  });
});
