// The packed tarball installs as a user would get it: no lifecycle script, every command on PATH, man pages found.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/paths.js';
import { runProcess } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';

const COMMANDS = ['ec2-bundle-image', 'ec2-bundle-vol', 'ec2-upload-bundle', 'ec2-download-bundle', 'ec2-unbundle',
  'ec2-delete-bundle', 'ec2-migrate-manifest', 'ec2-ami-tools-version', 'ec2-convert-to-ebs'];
const work = scratch('install');
const prefix = join(work.dir, 'prefix');
const elsewhere = join(work.dir, 'elsewhere');
let tarball = '';

// npm's own environment variables (from `npm test`) would steer the nested npm; give it a clean one.
const npmEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, NO_UPDATE_NOTIFIER: '1', npm_config_fund: 'false', npm_config_audit: 'false' };
};

beforeAll(async () => {
  const pack = await runProcess('npm', ['pack', '--pack-destination', work.dir, '--json'], { cwd: ROOT, env: npmEnv() });
  expect(pack.code, pack.stderr).toBe(0);
  const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(work.dir, info[0].filename);
  const files = info[0].files.map((f) => f.path);
  expect(files).toContain('dist/cli/bundle-image.js');
  expect(files).toContain('man/ec2-bundle-image.1');
  // --ignore-scripts: the published package must need no lifecycle script to work; --prefer-offline uses the cache npm ci filled.
  const inst = await runProcess('npm', ['install', '-g', '--prefix', prefix, tarball, '--ignore-scripts', '--prefer-offline'],
    { cwd: work.dir, env: npmEnv() });
  expect(inst.code, inst.stderr).toBe(0);
  (await import('node:fs')).mkdirSync(elsewhere);
}, 600_000);
afterAll(work.cleanup);

describe('npm pack, then npm install -g --ignore-scripts of the tarball', () => {
  it('declares no install-time lifecycle script', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pkg.scripts[s], s).toBeUndefined();
  });

  it('puts every command on PATH, and each runs from another directory', async () => {
    expect(readdirSync(join(prefix, 'bin')).sort()).toEqual([...COMMANDS].sort());
    const PATH = `${join(prefix, 'bin')}:${process.env.PATH}`;
    for (const name of COMMANDS) {
      const r = await runProcess(name, ['--help'], { cwd: elsewhere, env: { PATH } });
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: ${name}`));
      const m = await runProcess(name, ['--manual'], { cwd: elsewhere, env: { PATH } });
      expect(m.code, `${name}: ${m.stderr}`).toBe(0);
      expect(m.stdout).toMatch(new RegExp(`^NAME\\n\\s+${name} - `, 'm'));
    }
    const v = await runProcess('ec2-ami-tools-version', [], { cwd: elsewhere, env: { PATH } });
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+ 20071010 \(amitools\)\n/);
  });

  it('installs the man pages where man finds them', async () => {
    for (const name of COMMANDS) expect(existsSync(join(prefix, 'share', 'man', 'man1', `${name}.1`)), name).toBe(true);
    const r = await runProcess('man', ['-M', join(prefix, 'share', 'man'), 'ec2-bundle-image'],
      { cwd: elsewhere, env: { MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '100', LANG: 'C.UTF-8' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ec2-bundle-image - bundle an image file/);
    expect(r.stdout).toMatch(/--privatekey/);
  });
});
