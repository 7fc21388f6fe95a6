import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run.js';

describe('S3 commands: help and manual', () => {
  for (const name of ['ec2-upload-bundle', 'ec2-download-bundle', 'ec2-delete-bundle']) {
    it(`${name} --manual documents every flag of --help, exit codes and the environment`, async () => {
      const help = await runCli(name, ['--help']);
      expect(help.code).toBe(0);
      const flags = [...new Set(help.stdout.match(/--[a-z][a-z-]+/g))];
      expect(flags).toContain('--bucket');
      const manual = await runCli(name, ['--manual']);
      expect(manual.code).toBe(0);
      for (const f of flags) expect(manual.stdout).toContain(f);
      expect(manual.stdout).toMatch(/254/);
      expect(manual.stdout).toContain('AWS_SECRET_ACCESS_KEY');
    });
  }

  it('ec2-delete-bundle needs -m or -p, and exits 1 with the original wording for a missing -b', async () => {
    const r = await runCli('ec2-delete-bundle', ['-b', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^missing mandatory parameter: --manifest or --prefix/);
    const b = await runCli('ec2-download-bundle', []);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/^missing mandatory parameter: --bucket/);
    const m = await runCli('ec2-download-bundle', ['-b', 'x', '-m', '../up.manifest.xml']);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/^--manifest has invalid value '\.\.\/up\.manifest\.xml': a plain name is required/);
  });
});
