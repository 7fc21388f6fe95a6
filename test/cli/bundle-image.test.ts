// Must show 3: our bundles open with the standard tools, verify with openssl, and match the original's manifest text.
import { afterAll, describe, expect, it } from 'vitest';
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { caseImage, readCase, sha1File } from '../helpers/images.js';
import { AWS_CERTS, HAVE_AWS_CERTS, KEYS, NO_AWS_CERTS_REASON, key, reference, skipNotice } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { field, maskRandomFields, opensslDecryptHex, opensslVerify, partEntries, scratch } from '../helpers/bundles.js';

skipNotice(!HAVE_AWS_CERTS, `realcert: ${NO_AWS_CERTS_REASON}`);
const work = scratch('bundle-image');
afterAll(work.cleanup);
const PART = 10 * 1024 * 1024;

/** The case's original command line, pointed at our image path and output directory. */
function bundleArgs(name: string, image: string, out: string): string[] {
  const tokens = readCase(name).commands.bundle.split(/\s+/).slice(1);
  return tokens.map((t, i) => (tokens[i - 1] === '-i' ? image : tokens[i - 1] === '-d' ? out : t.replace('../../aws-certs', AWS_CERTS)));
}

describe('ec2-bundle-image against the original\'s bundles', () => {
  for (const name of ['tiny', 'multipart', 'sparse', 'sparse-enddata', 'options', 'realcert', 'manyparts']) {
    it.skipIf(name === 'realcert' && !HAVE_AWS_CERTS)(name, async () => {
      const c = readCase(name);
      const dir = join(work.dir, name);
      const out = join(dir, 'out');
      mkdirSync(out, { recursive: true });
      const image = await caseImage(name, dir);
      const r = await runCli('ec2-bundle-image', bundleArgs(name, image, out), { cwd: reference(name) });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);

      const member = c.tar.member_name;
      const xml = readFileSync(join(out, `${member}.manifest.xml`), 'utf8');
      const original = readFileSync(reference(name, c.manifest.file), 'utf8');
      expect(maskRandomFields(xml)).toBe(maskRandomFields(original));
      expect(field(xml, 'digest')).toBe(c.tar.sha1);
      expect(xml).toMatch(/^<\?xml version='1.0'\?><manifest><version>2007-10-10<\/version><bundler><name>amitools<\/name>/);

      // Parts: 10 MiB each but the last, digit rule for names, digests and bundled_size as written.
      const parts = partEntries(xml);
      const count = Number(/<parts count='(\d+)'>/.exec(xml)![1]);
      expect(parts.length).toBe(count);
      const digits = String(count).length;
      let total = 0;
      parts.forEach((p, i) => {
        expect(p.filename).toBe(`${member}.part.${String(i).padStart(digits, '0')}`);
        const path = join(out, p.filename);
        expect(sha1File(path)).toBe(p.digest);
        const size = statSync(path).size;
        if (i < count - 1) expect(size).toBe(PART); else expect(size).toBeGreaterThan(0);
        total += size;
      });
      expect(Number(field(xml, 'bundled_size'))).toBe(total);
      expect(Math.ceil(total / PART)).toBe(count);
      expect(r.stdout).toBe([
        'Bundling image file...',
        ...parts.map((p) => `Created ${p.filename}`),
        'Creating bundle manifest...',
        `Bundle manifest is ${out}/${member}.manifest.xml`,
        'ec2-bundle-image complete.',
        '',
      ].join('\n'));

      // The standard tools open it: openssl for key, IV and signature; openssl enc | gunzip | tar for the image.
      const userKey = key(c.keys.user_key.split('/').pop()!);
      const keyHex = opensslDecryptHex(field(xml, 'user_encrypted_key'), userKey, dir);
      const ivHex = opensslDecryptHex(field(xml, 'user_encrypted_iv'), userKey, dir);
      expect(keyHex).toMatch(/^[0-9a-f]{32}$/);
      expect(ivHex).toMatch(/^[0-9a-f]{32}$/);
      if (c.keys.ec2_key) {
        expect(opensslDecryptHex(field(xml, 'ec2_encrypted_key'), join(KEYS, 'ec2-key.pem'), dir)).toBe(keyHex);
        expect(opensslDecryptHex(field(xml, 'ec2_encrypted_iv'), join(KEYS, 'ec2-key.pem'), dir)).toBe(ivHex);
      } else {
        expect(field(xml, 'ec2_encrypted_key')).toHaveLength(256); // the real 1024-bit cert-ec2.pem
      }
      expect(opensslVerify(xml, key(c.keys.user_cert.split('/').pop()!), dir)).toBe(true);
      const unpacked = join(dir, 'unpacked');
      mkdirSync(unpacked);
      const partList = parts.map((p) => `'${join(out, p.filename)}'`).join(' ');
      execSync(`cat ${partList} | openssl enc -d -aes-128-cbc -K ${keyHex} -iv ${ivHex} | gunzip | tar -x -S -C '${unpacked}'`, { shell: '/bin/bash' });
      const restored = join(unpacked, member);
      expect(sha1File(restored)).toBe(c.image.sha1);
      expect(Math.floor(statSync(restored).mtimeMs / 1000)).toBe(c.image.mtime);
    });
  }
});
