// Hostile manifests (issue 8): a signature is checked over exactly the elements read, by unbundle --cert and by
// migrate; names follow one rule at both ends; names from inputs are printed escaped. Every manifest here is crafted
// by the test from the reference bundles and the fixture keys, deterministically.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/format/manifest.js';
import { loadPrivateKey, signHex } from '../../src/crypto/keys.js';
import { opensslVerify, scratch } from '../helpers/bundles.js';
import { sha1File } from '../helpers/images.js';
import { key, reference } from '../helpers/paths.js';
import { runCli, type RunResult } from '../helpers/run.js';
import { startEc2Standin, type Ec2Standin } from '../helpers/ec2-standin.js';

const work = scratch('hostile-manifests');
afterAll(work.cleanup);
let n = 0;
const fresh = (tag = 'case'): string => {
  const d = join(work.dir, `${tag}${n++}`);
  mkdirSync(d);
  return d;
};

const USER_CERT = key('user-cert.pem');
const USER_KEY = key('user-key.pem');
const EC2_ENV = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', AWS_EC2_METADATA_DISABLED: 'true', AWS_PROFILE: '', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' };

/** Hostile input is a run-time failure: exit 254, exactly one line on stderr, no stack trace, nothing on stdout. */
function expectRefused(r: RunResult, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(254);
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.slice(0, -1)).not.toContain('\n');
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/); // printed escaped
}

/** A bad flag value is a usage error: exit 1, the message and the "Try" hint. */
function expectUsage(r: RunResult, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(pattern);
  expect(lines[1]).toMatch(/^Try 'ec2-[a-z-]+ --help'$/);
  expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
}

/** The original's rule for the signed text, used here only to build the attacks: first <machine_configuration> to next </image>. */
function region(xml: string): string {
  return xml.slice(xml.indexOf('<machine_configuration>'), xml.indexOf('</image>') + '</image>'.length);
}

/** Signs the region of `xml` with `keyPath` (our writer refuses what these hold): a hostile manifest with a genuine signature. */
function resigned(xml: string, keyPath = USER_KEY): string {
  return xml.replace(/<signature>[0-9a-f]+<\/signature>/, `<signature>${signHex(loadPrivateKey(keyPath), region(xml))}</signature>`);
}

// The victim: the original's tiny bundle, genuinely signed with user-key. The attacker's payload: the signed region of
// another bundle made for the same key (the original's multipart bundle): any parts, digests and image.
const victim = readFileSync(reference('tiny', 'tiny.img.manifest.xml'), 'utf8');
const V = region(victim);
const A = region(readFileSync(reference('multipart', 'multipart.img.manifest.xml'), 'utf8'));
const head = victim.slice(0, victim.indexOf(V));
const tail = victim.slice(victim.indexOf(V) + V.length); // holds the victim's signature over V
const decl = "<?xml version='1.0'?>";

/** Each wraps the victim's genuinely signed region so that a text search finds it, and appends the attacker's. */
const WRAPPED: [string, string, RegExp][] = [
  ['in a comment', head + `<!--${V}-->` + A + tail, /comments are not allowed in a manifest/],
  ['in a processing instruction', head + `<?x ${V}?>` + A + tail, /processing instructions are not allowed/],
  ['in an unknown element', head + `<x>${V}</x>` + A + tail, /unknown element <manifest\/x>/],
  ['in CDATA', head + `<![CDATA[${V}]]>` + A + tail, /CDATA sections are not allowed/],
  ['in a DOCTYPE', decl + `<!DOCTYPE manifest [<!ENTITY v "${V}">]>` + head.slice(decl.length) + A + tail, /DOCTYPE declarations are not allowed/],
  ['in the bundler', head.replace('</bundler>', `${V}</bundler>`) + A + tail, /unknown element <manifest\/bundler\/machine_configuration>/],
  ['with a second machine_configuration and image appended', head + V + A + tail, /more than one <manifest\/machine_configuration> element/],
  ['with the attacker\'s elements first', head + A + V + tail, /more than one <manifest\/machine_configuration> element/],
  ['with a second image', head + V + A.slice(A.indexOf('<image>')) + tail, /more than one <manifest\/image> element/],
  ['with a second parts list', head + V.replace('</parts>', `</parts>${A.slice(A.indexOf('<parts'), A.indexOf('</image>'))}`) + tail, /more than one <manifest\/image\/parts> element/],
  ['with a second manifest after the root', victim + head.slice(decl.length) + A + tail, /not well-formed XML: a second root element/],
];

describe('a genuinely signed region wrapped in what the parser skips is refused (issue 8, critical)', () => {
  let src: string; // the victim's part and the attacker's parts, side by side
  beforeAll(() => {
    src = fresh('src');
    copyFileSync(reference('tiny', 'tiny.img.part.0'), join(src, 'tiny.img.part.0'));
    for (const i of [0, 1, 2]) copyFileSync(reference('multipart', `multipart.img.part.${i}`), join(src, `multipart.img.part.${i}`));
  });

  const unbundle = (manifest: string, out: string, extra: string[] = ['--cert', USER_CERT]) =>
    runCli('ec2-unbundle', ['-m', manifest, '-k', USER_KEY, '-s', src, '-d', out, '--batch', ...extra]);
  const migrate = (manifest: string) =>
    runCli('ec2-migrate-manifest', ['-m', manifest, '-c', USER_CERT, '-k', USER_KEY, '--no-mapping', '--kernel', 'aki-aaaa1111', '--ec2cert', key('ec2-cert.pem'), '--batch']);

  it('control: the victim manifest itself unbundles with --cert and migrates', async () => {
    const m = join(fresh(), 'tiny.img.manifest.xml');
    writeFileSync(m, victim);
    const out = fresh('out');
    const r = await unbundle(m, out);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out)).toEqual(['tiny.img']);
    const g = await migrate(m);
    expect(g.code, g.stderr).toBe(0);
    expect(opensslVerify(readFileSync(m, 'utf8'), USER_CERT, fresh())).toBe(true);
  });

  it('control: the attacks carry the victim\'s genuinely signed region and signature', () => {
    // (A second parts list inside the region is the one that changes the signed text: refused for its structure first.)
    for (const [label, xml] of WRAPPED) expect(xml.includes(V) !== label.includes('parts list'), label).toBe(true);
  });

  for (const [label, xml, message] of WRAPPED) {
    it(`ec2-unbundle --cert refuses the signed region ${label}: exit 254, one line, nothing written`, async () => {
      const dir = fresh();
      const m = join(dir, 'tiny.img.manifest.xml');
      writeFileSync(m, xml);
      const out = fresh('out');
      expectRefused(await unbundle(m, out), new RegExp(`^ERROR: Invalid manifest '${m.replace(/[.]/g, '\\.')}': ${message.source}`));
      expect(readdirSync(out)).toEqual([]);
      // Without --cert the structure is refused all the same.
      expectRefused(await unbundle(m, out, []), message);
      expect(readdirSync(out)).toEqual([]);
      expect(readdirSync(dir)).toEqual(['tiny.img.manifest.xml']);
    });

    it(`ec2-migrate-manifest refuses the signed region ${label}: exit 254, one line, manifest untouched, no .bak`, async () => {
      const dir = fresh();
      const m = join(dir, 'tiny.img.manifest.xml');
      writeFileSync(m, xml);
      expectRefused(await migrate(m), new RegExp(`^ERROR: Bad manifest '.*': ${message.source}`));
      expect(readFileSync(m).equals(Buffer.from(xml, 'utf8'))).toBe(true);
      expect(readdirSync(dir)).toEqual(['tiny.img.manifest.xml']);
    });
  }

  it('a region verified over its exact span, whitespace and all: a pretty-printed manifest signed over its span is accepted by both', async () => {
    // Whitespace between elements is tolerated, and it is part of the signed text, as for the original.
    const base = parseManifest(victim);
    const xml = resigned(victim.replace(/></g, '>\n  <'));
    expect(opensslVerify(xml, USER_CERT, fresh())).toBe(true); // the oracle agrees on what is signed
    const dir = fresh();
    const m = join(dir, 'tiny.img.manifest.xml');
    writeFileSync(m, xml);
    const out = fresh('out');
    const r = await unbundle(m, out);
    expect(r.code, r.stderr).toBe(0);
    expect(sha1File(join(out, 'tiny.img'))).toBe(sha1File(reference('tiny', 'tiny.img')));
    // migrate rewrites exactly the verified content (compact), with only the migrated fields changed.
    const g = await migrate(m);
    expect(g.code, g.stderr).toBe(0);
    expect(readFileSync(`${m}.bak`, 'utf8')).toBe(xml);
    const after = readFileSync(m, 'utf8');
    expect(opensslVerify(after, USER_CERT, fresh())).toBe(true);
    const migrated = parseManifest(after);
    expect({ ...migrated, kernelId: undefined, ec2EncryptedKey: '', ec2EncryptedIv: '', signature: '', signedText: '', spans: undefined })
      .toEqual({ ...base, ec2EncryptedKey: '', ec2EncryptedIv: '', signature: '', signedText: '', spans: undefined });
    expect(migrated.kernelId).toBe('aki-aaaa1111');
  });

  it('a tampered region is a signature mismatch, not a structure error', async () => {
    const dir = fresh();
    const m = join(dir, 'tiny.img.manifest.xml');
    writeFileSync(m, victim.replace('<size>1048576</size>', '<size>1048577</size>'));
    const out = fresh('out');
    expectRefused(await unbundle(m, out), /^ERROR: manifest .* fails authentication with .*user-cert\.pem/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('a manifest that is not a regular file is refused at once, and one over 1 MiB without being read whole', async () => {
    const dir = fresh();
    const big = join(dir, 'big.manifest.xml');
    writeFileSync(big, victim.replace('</bundler>', `</bundler>${' '.repeat(17 << 20)}`));
    const out = fresh('out');
    expectRefused(await unbundle(big, out), /over 1 MiB/);
    expectRefused(await migrate(big), /^ERROR: Bad manifest '.*big\.manifest\.xml': it is over 1 MiB/);
    expect(existsSync(`${big}.bak`)).toBe(false);
  });
});

describe('one name rule at both ends: what bundle-image writes every command reads, and nothing else', () => {
  it("ec2-bundle-image -i v1..2.img bundles, and unbundle --cert and migrate read it back ('..' inside a name is plain)", async () => {
    const dir = fresh();
    const image = join(dir, 'v1..2.img');
    copyFileSync(reference('tiny', 'tiny.img'), image);
    const out = fresh('bundle');
    const b = await runCli('ec2-bundle-image', ['-i', image, '-c', USER_CERT, '-k', USER_KEY, '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', out, '--batch']);
    expect(b.code, b.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['v1..2.img.manifest.xml', 'v1..2.img.part.0']);
    const dest = fresh('out');
    const u = await runCli('ec2-unbundle', ['-m', join(out, 'v1..2.img.manifest.xml'), '-k', USER_KEY, '-s', out, '-d', dest, '--cert', USER_CERT, '--batch']);
    expect(u.code, u.stderr).toBe(0);
    expect(sha1File(join(dest, 'v1..2.img'))).toBe(sha1File(image));
    const g = await runCli('ec2-migrate-manifest', ['-m', join(out, 'v1..2.img.manifest.xml'), '-c', USER_CERT, '-k', USER_KEY, '--no-mapping', '--keep-ec2-key', '--batch']);
    expect(g.code, g.stderr).toBe(0);
  });

  it.each([
    ['.hidden.img', undefined, /^--image has invalid value '.*\/\.hidden\.img': its file name is not a plain file name/],
    ['tiny.img', '.x', /^--prefix has invalid value '\.x': not a plain file name/],
    ['tiny.img', '..', /^--prefix has invalid value '\.\.': not a plain file name/],
    ['tiny.img', '.', /^--prefix has invalid value '\.': not a plain file name/],
    ['tiny.img', 'a\\b', /^--prefix has invalid value 'a\\b': not a plain file name/],
    ['tiny.img', 'a\u001b]0;pwned\u0007b', /^--prefix has invalid value 'a\\x1b\]0;pwned\\x07b': not a plain file name/],
    ['tiny.img', '', /^--prefix has invalid value '': not a plain file name/],
  ])('ec2-bundle-image refuses the name of -i %s -p %s, writing nothing', async (file, prefix, message) => {
    const dir = fresh();
    const image = join(dir, file);
    copyFileSync(reference('tiny', 'tiny.img'), image);
    const out = fresh('bundle');
    const args = ['-i', image, '-c', USER_CERT, '-k', USER_KEY, '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', out, '--batch'];
    expectUsage(await runCli('ec2-bundle-image', prefix === undefined ? args : [...args, '-p', prefix]), message);
    expect(readdirSync(out)).toEqual([]);
  });

  it.each([
    ['ec2-delete-bundle', ['-b', 'bucket', '-a', 'AKID', '-s', 'secret', '-p', '.bashrc', '-y']],
    ['ec2-download-bundle', ['-b', 'bucket', '-a', 'AKID', '-s', 'secret', '-p', '..']],
    ['ec2-download-bundle', ['-b', 'bucket', '-a', 'AKID', '-s', 'secret', '-m', '.']],
  ])('%s refuses a prefix or manifest name outside the rule before any request', async (cmd, args) => {
    const dir = fresh();
    expectUsage(await runCli(cmd, [...args, ...(cmd === 'ec2-download-bundle' ? ['-d', dir] : [])], { env: { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' } }),
      /has invalid value '[^']*': a plain (bundle )?name is required \(no '\/'/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    ['.bashrc'], ['.'], ['..'], ['../tiny.img.part.0'], ['sub/tiny.img.part.0'], ['a\\b'], ['tiny\u0085img'],
  ])('a genuinely signed manifest naming part %j is refused by unbundle --cert and migrate', async (bad) => {
    const xml = resigned(victim.replace('<filename>tiny.img.part.0</filename>', `<filename>${bad}</filename>`));
    const dir = fresh();
    const m = join(dir, 'tiny.img.manifest.xml');
    writeFileSync(m, xml);
    copyFileSync(reference('tiny', 'tiny.img.part.0'), join(dir, 'tiny.img.part.0'));
    if (bad === '.bashrc') copyFileSync(reference('tiny', 'tiny.img.part.0'), join(dir, '.bashrc'));
    const out = fresh('out');
    const r = await runCli('ec2-unbundle', ['-m', m, '-k', USER_KEY, '-s', dir, '-d', out, '--cert', USER_CERT, '--batch']);
    expectRefused(r, /<manifest\/image\/parts\/part\[0\]\/filename> '.*' is not a plain file name/);
    expect(readdirSync(out)).toEqual([]);
    const before = readdirSync(dir).sort();
    expectRefused(await runCli('ec2-migrate-manifest', ['-m', m, '-c', USER_CERT, '-k', USER_KEY, '--no-mapping', '--batch']), /is not a plain file name/);
    expect(readFileSync(m, 'utf8')).toBe(xml);
    expect(readdirSync(dir).sort()).toEqual(before);
  });

  it('an image name outside the rule is refused the same way', async () => {
    const xml = resigned(victim.replace('<name>tiny.img</name>', '<name>.profile</name>'));
    const m = join(fresh(), 'tiny.img.manifest.xml');
    writeFileSync(m, xml);
    const out = fresh('out');
    expectRefused(await runCli('ec2-unbundle', ['-m', m, '-k', USER_KEY, '-s', reference('tiny'), '-d', out, '--cert', USER_CERT, '--batch']),
      /<manifest\/image\/name> '\.profile' is not a plain file name/);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('names from inputs are printed with control characters escaped', () => {
  it('a C1 CSI in a manifest value reaches the error line escaped', async () => {
    const csi = '\u009b31mRED';
    const xml = victim.replace('<filename>tiny.img.part.0</filename>', '<filename>&#x9b;31mRED</filename>');
    const m = join(fresh(), 'tiny.img.manifest.xml');
    writeFileSync(m, xml);
    const r = await runCli('ec2-unbundle', ['-m', m, '-k', USER_KEY, '-s', reference('tiny'), '-d', fresh('out'), '--batch']);
    expectRefused(r, /'\\x9b31mRED' is not a plain file name/);
    expect(r.stderr).not.toContain(csi);
    // --debug adds the stack trace: escaped as well.
    const d = await runCli('ec2-unbundle', ['-m', m, '-k', USER_KEY, '-s', reference('tiny'), '-d', fresh('out'), '--batch', '--debug']);
    expect(d.code).toBe(254);
    expect(d.stderr).toMatch(/\n\s+at /);
    expect(d.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });

  describe('through EC2 mapping (stand-in Query API)', () => {
    let ec2: Ec2Standin;
    const OWNER = '137112412989';
    beforeAll(async () => {
      ec2 = await startEc2Standin({
        regions: ['us-east-1', 'eu-west-1'],
        images: {
          'us-east-1': [
            { imageId: 'aki-12345678', type: 'kernel', ownerId: OWNER, location: 'ec2-public-images/vmlinuz.manifest.xml', architecture: 'i386' },
            { imageId: 'ari-87654321', type: 'ramdisk', ownerId: OWNER, location: 'ec2-public-images/initrd.manifest.xml', architecture: 'i386' },
          ],
          'eu-west-1': [
            { imageId: 'aki-7e0d250a', type: 'kernel', ownerId: OWNER, location: 'ec2-public-images-eu/vmlinuz.manifest.xml', architecture: 'i386' },
          ],
        },
      });
    });
    afterAll(async () => { await ec2.close(); });

    it('an escape sequence in an id is printed escaped in the warning, and such an id is never written', async () => {
      const dir = fresh();
      const m = join(dir, 'customname.manifest.xml');
      const xml = readFileSync(reference('options', 'customname.manifest.xml'));
      writeFileSync(m, xml);
      const id = 'ari-\u001b]0;pwned\u0007';
      const r = await runCli('ec2-migrate-manifest', ['-m', m, '-c', key('user4096-cert.pem'), '-k', key('user4096-key.pem'), '--ec2cert', key('ec2-cert.pem'),
        '--region', 'eu-west-1', '--ramdisk', id, '--batch'], { env: { ...EC2_ENV, AMITOOLS_EC2_ENDPOINT: ec2.url } });
      expect(r.stderr).toBe('The following identifiers do not exist in the target region:\n  [ari-\\x1b]0;pwned\\x07]\n' +
        "ERROR: cannot write manifest: the ramdisk id 'ari-\\x1b]0;pwned\\x07' holds a character XML cannot carry (U+001B)\n");
      expect(r.code).toBe(254);
      expect(readFileSync(m).equals(xml)).toBe(true);
      expect(readdirSync(dir)).toEqual(['customname.manifest.xml']);
    });
  });

  it('an unknown option holding an escape sequence is not echoed raw', async () => {
    const r = await runCli('ec2-unbundle', ['--bogus\u001b[2J\u001b]0;pwned\u0007']);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });
});
