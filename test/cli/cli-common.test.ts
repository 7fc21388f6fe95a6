// What every command shares (version, manual, help, flag errors) and ec2-bundle-image's warnings and size checks.
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { key, reference } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';

const COMMANDS = ['ec2-bundle-image', 'ec2-bundle-vol', 'ec2-upload-bundle', 'ec2-download-bundle', 'ec2-unbundle',
  'ec2-delete-bundle', 'ec2-migrate-manifest', 'ec2-ami-tools-version', 'ec2-convert-to-ebs'];
const work = scratch('cli');
afterAll(work.cleanup);

describe('every command', () => {
  it.each(COMMANDS)('%s: --manual prints its man page, --help and --version exit 0, an unknown flag exits 1', async (name) => {
    const manual = await runCli(name, ['--manual']);
    expect(manual.code).toBe(0);
    expect(manual.stdout).toMatch(new RegExp(`^NAME\\n\\s+${name} - `, 'm'));
    expect(manual.stdout).toMatch(/^EXIT STATUS/m);
    const help = await runCli(name, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^Usage: ${name}`));
    for (const flag of new Set(help.stdout.match(/--[a-z][a-z0-9-]+/g))) expect(manual.stdout, `${name} --manual: ${flag}`).toContain(flag);
    const version = await runCli(name, ['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^amitools \d+\.\d+\.\d+\n/);
    const bad = await runCli(name, ['--no-such-flag']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`unknown option '--no-such-flag'\nTry '${name} --help'\n`);
  });
});

describe('ec2-ami-tools-version', () => {
  it('prints our version, the manifest version, and a copyright line', async () => {
    const r = await runCli('ec2-ami-tools-version', []);
    expect(r.code).toBe(0);
    const [first, second, rest] = r.stdout.split('\n');
    expect(first).toMatch(/^\d+\.\d+\.\d+ 20071010 \(amitools\)$/);
    expect(second).toMatch(/^Copyright/);
    expect(rest).toBe('');
  });
});

describe('ec2-bundle-image warnings and size checks', () => {
  const args = (out: string, extra: string[]) => ['-i', reference('tiny', 'tiny.img'), '-c', key('user-cert.pem'), '-k', key('user-key.pem'),
    '-u', '1234-5678-9012', '--ec2cert', key('ec2-cert.pem'), '-d', out, '--batch', ...extra];

  it('warns about -B without root/ami, and maps an architecture EC2 knows by another name (amd64) with a notice', async () => {
    const out = join(work.dir, 'arch');
    (await import('node:fs')).mkdirSync(out);
    const r = await runCli('ec2-bundle-image', args(out, ['-r', 'amd64', '-B', 'ephemeral0=sdb']));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("Architecture 'amd64' is called 'x86_64' by EC2: bundling for x86_64.\n");
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([
      "Block-device-mapping has no 'root' entry. A launch-time default will be used.",
      "Block-device-mapping has no 'ami' entry. A launch-time default will be used.",
      'Bundling image file...',
    ]);
    expect(readdirSync(out).sort()).toEqual(['tiny.img.manifest.xml', 'tiny.img.part.0']);
    expect(readFileSync(join(out, 'tiny.img.manifest.xml'), 'utf8')).toContain('<architecture>x86_64</architecture>');
  });

  it('refuses an architecture EC2 does not accept, before writing anything', async () => {
    const out = join(work.dir, 'sparc');
    (await import('node:fs')).mkdirSync(out);
    const r = await runCli('ec2-bundle-image', args(out, ['-r', 'sparc']));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("--arch has invalid value 'sparc': EC2 accepts only i386, x86_64, arm64, x86_64_mac, arm64_mac\nTry 'ec2-bundle-image --help'\n");
    expect(readdirSync(out)).toEqual([]);
  });

  it("without -r in --batch or without a terminal, takes this machine's architecture as the original does", async () => {
    const expected = ({ x64: 'x86_64', ia32: 'i386', arm64: 'arm64' } as Record<string, string>)[process.arch];
    for (const batch of [true, false]) {
      const out = join(work.dir, `noarch-${batch}`);
      (await import('node:fs')).mkdirSync(out);
      const r = await runCli('ec2-bundle-image', args(out, []).filter((a) => batch || a !== '--batch'));
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(out, 'tiny.img.manifest.xml'), 'utf8')).toContain(`<architecture>${expected}</architecture>`);
    }
  });

  it('refuses an image over 10 GiB unless --no-size-checks', async () => {
    const out = join(work.dir, 'large');
    (await import('node:fs')).mkdirSync(out);
    const big = join(work.dir, 'big.img');
    writeFileSync(big, '');
    truncateSync(big, 10 * 1024 ** 3 + 4096);
    const r = await runCli('ec2-bundle-image', [...args(out, ['-r', 'x86_64']), '-i', big]);
    expect(r.code).toBe(254);
    expect(r.stderr).toBe('ERROR: the specified image big.img is too large\n');
    expect(readdirSync(out)).toEqual([]);
  });
});
