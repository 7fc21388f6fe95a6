// Must show 1: every bundle the original tool made unbundles with ours to the recorded image, holes included.
import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readCase, sha1File } from '../helpers/images.js';
import { key, reference } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';

const work = scratch('unbundle-ref');
afterAll(work.cleanup);

const cases = [
  { name: 'tiny', keys: ['user-key.pem', 'user-key.pkcs1.pem'] },
  { name: 'multipart', keys: ['user-key.pem'] },
  { name: 'sparse', keys: ['user-key.pem', 'user-key.pkcs1.pem'] },
  { name: 'sparse-enddata', keys: ['user-key.pem'] },
  { name: 'options', keys: ['user4096-key.pem', 'user4096-key.pkcs1.pem'] },
  { name: 'realcert', keys: ['user-key.pem'] },
];

describe('ec2-unbundle on the original tool\'s bundles', () => {
  for (const { name, keys } of cases) {
    for (const keyFile of keys) {
      it(`${name} with ${keyFile}`, async () => {
        const c = readCase(name);
        const out = join(work.dir, `${name}-${keyFile}`);
        const { mkdirSync } = await import('node:fs');
        mkdirSync(out);
        const certFile = keyFile.startsWith('user4096') ? 'user4096-cert.pem' : 'user-cert.pem';
        const r = await runCli('ec2-unbundle', [
          '-m', reference(name, c.manifest.file), '-k', key(keyFile), '-s', reference(name), '-d', out,
          '--cert', key(certFile), '--batch',
        ]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.stdout).toBe('Unbundle complete.\n');
        expect(readdirSync(out)).toEqual([c.tar.member_name]);
        const file = join(out, c.tar.member_name);
        const st = statSync(file);
        expect(sha1File(file)).toBe(c.image.sha1);
        expect(st.size).toBe(c.image.size);
        expect((st.mode & 0o7777).toString(8)).toBe(c.image.mode.replace(/^0/, ''));
        expect(Math.floor(st.mtimeMs / 1000)).toBe(c.image.mtime);
        if (c.image.sparse) {
          // Holes restored: no more allocated than the original's data (plus a little metadata).
          expect(st.blocks * 512).toBeLessThanOrEqual((c.image as unknown as { allocated_bytes_on_ext4: number }).allocated_bytes_on_ext4 + 65536);
        }
      });
    }
  }

  it('migrated manifests unbundle with the source case parts', async () => {
    for (const [dir, manifest, parts, keyFile, sha1] of [
      ['migrated', 'tiny.img.manifest.xml', 'tiny', 'user-key.pem', '331abbf13df6f71edd1008780996c6bec2fc053f'],
      ['migrated-options', 'customname.manifest.xml', 'options', 'user4096-key.pem', '046c0e762e39be5e87af4c7de764c8a3798432d8'],
    ]) {
      const out = join(work.dir, dir);
      const { mkdirSync } = await import('node:fs');
      mkdirSync(out);
      const r = await runCli('ec2-unbundle', ['-m', reference(dir, manifest), '-k', key(keyFile), '-s', reference(parts), '-d', out, '--batch']);
      expect(r.code, r.stderr).toBe(0);
      const [file] = readdirSync(out);
      expect(sha1File(join(out, file))).toBe(sha1);
    }
  });
});
