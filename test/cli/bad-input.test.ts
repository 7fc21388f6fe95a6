// Must show 4: bad input gets one clear line, a non-zero exit, and no output file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, key, reference } from '../helpers/paths.js';
import { runCli, runProcess, type RunResult } from '../helpers/run.js';
import { scratch, writeSignedBundle } from '../helpers/bundles.js';

const work = scratch('bad-input');
afterAll(work.cleanup);
let n = 0;
const fresh = (): string => { const d = join(work.dir, `case${n++}`); mkdirSync(d); return d; };

/** One line on stderr (plus the original's "Try ... --help" hint for parameter errors), non-zero exit. */
function expectOneLineError(r: RunResult, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.stderr.trimEnd().split('\n').filter((l) => !/^Try 'ec2-[a-z-]+ --help'$/.test(l));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --debug
}

const tinyImage = reference('tiny', 'tiny.img');
const bundleFlags = (out: string, over: Record<string, string> = {}): string[] => Object.entries({
  '-i': tinyImage, '-c': key('user-cert.pem'), '-k': key('user-key.pem'), '-u': '123456789012', '-r': 'x86_64',
  '--ec2cert': key('ec2-cert.pem'), '-d': out, ...over,
}).flat().concat('--batch');

describe('ec2-bundle-image refuses bad input', () => {
  it('missing mandatory parameter', async () => {
    const out = fresh();
    const r = await runCli('ec2-bundle-image', ['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012', '-r', 'x86_64', '-d', out, '--batch']);
    expectOneLineError(r, 1, /^missing mandatory parameter: --image$/);
    expect(readdirSync(out)).toEqual([]);
  });

  it.each([
    ['missing image', { '-i': '/nonexistent/nope.img' }, 1, /^--image has invalid value '\/nonexistent\/nope.img': File does not exist or is not a file\.$/],
    ['missing key', { '-k': '/nonexistent/key.pem' }, 1, /^--privatekey has invalid value '\/nonexistent\/key.pem': File does not exist or is not a file\.$/],
    ['missing cert', { '-c': '/nonexistent/cert.pem' }, 1, /^--cert has invalid value/],
    ['access key as user', { '-u': 'AKIAEXAMPLE' }, 1, /^--user has invalid value 'AKIAEXAMPLE': the user ID should consist of 12 digits \(optionally hyphenated\); this should not be your Access Key ID$/],
    ['prefix with a slash', { '-p': 'a/b' }, 1, /'\/' character not allowed/],
    ['missing destination', { '-d': '/nonexistent/dir' }, 1, /^--destination has invalid value '\/nonexistent\/dir': Directory does not exist/],
    ['key not matching the cert', { '-k': key('user4096-key.pem') }, 254, /^ERROR: .*user4096-key\.pem.*user-cert\.pem|^ERROR: .*user-cert\.pem.*user4096-key\.pem/],
    ['certificate given as the key', { '-k': key('user-cert.pem') }, 254, /^ERROR: .*certificate.*not a private key/i],
  ])('%s', async (_label, over, code, pattern) => {
    const out = fresh();
    const r = await runCli('ec2-bundle-image', bundleFlags(over['-d'] ?? out, over));
    expectOneLineError(r, code, pattern);
    expect(readdirSync(out)).toEqual([]);
  });

  it('garbage key file and unreadable key file', async () => {
    const out = fresh();
    const garbage = join(out, '..', 'garbage.pem');
    writeFileSync(garbage, 'not a key\n');
    expectOneLineError(await runCli('ec2-bundle-image', bundleFlags(out, { '-k': garbage })), 254, /garbage\.pem/);
    // Unreadable: root reads everything, so run as nobody with a key only root may read.
    const secret = join(work.dir, 'secret-key.pem');
    copyFileSync(key('user-key.pem'), secret);
    chmodSync(secret, 0o600);
    chmodSync(work.dir, 0o755);
    chmodSync(out, 0o777);
    const r = await runProcess('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath,
      join(ROOT, 'bin', 'ec2-bundle-image.js'), ...bundleFlags(out, { '-k': secret })]);
    expectOneLineError(r, 254, /secret-key\.pem/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('empty image', async () => {
    const out = fresh();
    const empty = join(out, '..', 'empty.img');
    writeFileSync(empty, '');
    expectOneLineError(await runCli('ec2-bundle-image', bundleFlags(out, { '-i': empty })), 254, /^ERROR: the specified image empty\.img is zero sized$/);
    expect(readdirSync(out)).toEqual([]);
  });
});

describe('ec2-unbundle refuses bad input and leaves nothing behind', () => {
  let bundle: string; // a copy of the original's multipart bundle
  beforeAll(() => {
    bundle = join(work.dir, 'multipart');
    mkdirSync(bundle);
    for (const f of readdirSync(reference('multipart'))) if (f.startsWith('multipart.img.')) copyFileSync(reference('multipart', f), join(bundle, f));
  });

  const copyBundle = (): string => {
    const d = fresh();
    for (const f of readdirSync(bundle)) copyFileSync(join(bundle, f), join(d, f));
    chmodSync(d, 0o755);
    for (const f of readdirSync(d)) chmodSync(join(d, f), 0o644);
    return d;
  };
  const unbundle = (src: string, out: string, extra: string[] = [], manifest = join(src, 'multipart.img.manifest.xml')) =>
    runCli('ec2-unbundle', ['-m', manifest, '-k', key('user-key.pem'), '-s', src, '-d', out, '--batch', ...extra]);

  it('wrong private key', async () => {
    const out = fresh();
    const r = await runCli('ec2-unbundle', ['-m', join(bundle, 'multipart.img.manifest.xml'), '-k', key('ec2-key.pem'), '-s', bundle, '-d', out, '--batch']);
    expectOneLineError(r, 254, /ec2-key\.pem/);
    expect(readdirSync(out)).toEqual([]);
  });

  it.each([
    ['missing part', (d: string) => execFileSync('rm', [join(d, 'multipart.img.part.1')])],
    ['truncated part', (d: string) => truncateSync(join(d, 'multipart.img.part.1'), 5_000_000)],
    ['corrupted part', (d: string) => {
      const p = join(d, 'multipart.img.part.1');
      const buf = readFileSync(p);
      buf[1234567] ^= 0x40;
      writeFileSync(p, buf);
    }],
  ])('%s is named', async (_label, damage) => {
    const src = copyBundle();
    damage(src);
    const out = fresh();
    const r = await unbundle(src, out);
    expectOneLineError(r, 254, /multipart\.img\.part\.1/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('tampered manifest with --cert', async () => {
    const src = copyBundle();
    const m = join(src, 'multipart.img.manifest.xml');
    writeFileSync(m, readFileSync(m, 'utf8').replace('<architecture>x86_64</architecture>', '<architecture>i386</architecture>'));
    const out = fresh();
    expectOneLineError(await unbundle(src, out, ['--cert', key('user-cert.pem')]), 254, /fails authentication/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('manifest that is not XML, and one lacking required elements', async () => {
    const src = copyBundle();
    const m = join(src, 'multipart.img.manifest.xml');
    const text = readFileSync(m, 'utf8');
    writeFileSync(m, 'this is not a manifest\n');
    const out = fresh();
    expectOneLineError(await unbundle(src, out), 254, /manifest/i);
    writeFileSync(m, text.replace(/<digest algorithm='SHA1'>[0-9a-f]+<\/digest><size>/, '<size>'));
    expectOneLineError(await unbundle(src, out), 254, /digest/);
    writeFileSync(m, text.replace(/<parts count='3'>.*<\/parts>/, ''));
    expectOneLineError(await unbundle(src, out), 254, /parts/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('destination that does not exist or is not writable', async () => {
    expectOneLineError(await unbundle(bundle, '/nonexistent/out'), 1, /^--destination has invalid value '\/nonexistent\/out': Directory does not exist/);
    const out = fresh();
    chmodSync(out, 0o555);
    chmodSync(work.dir, 0o755);
    chmodSync(bundle, 0o755);
    const r = await runProcess('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath,
      join(ROOT, 'bin', 'ec2-unbundle.js'), '-m', reference('multipart', 'multipart.img.manifest.xml'),
      '-k', key('user-key.pem'), '-s', reference('multipart'), '-d', out, '--batch']);
    expectOneLineError(r, 1, /--destination has invalid value .*not writable/);
    expect(readdirSync(out)).toEqual([]);
  });

  it('a tar member named ../x is refused before anything is written', async () => {
    const src = fresh();
    const out = join(src, 'out');
    mkdirSync(out);
    // A GNU tar of one file, renamed to ../x in its header (checksum recomputed).
    writeFileSync(join(src, 'x'), 'payload\n');
    const tar = execFileSync('tar', ['-c', '--owner', '0', '--group', '0', '--format=gnu', '-C', src, 'x']);
    tar.fill(0, 0, 100);
    tar.write('../x', 0, 'ascii');
    tar.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += tar[i];
    tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    writeSignedBundle(src, 'evil', tar);
    const r = await runCli('ec2-unbundle', ['-m', join(src, 'evil.manifest.xml'), '-k', key('user-key.pem'), '-s', src, '-d', out, '--batch']);
    expectOneLineError(r, 254, /\.\.\/x/);
    expect(readdirSync(out)).toEqual([]);
    expect(readdirSync(src).sort()).toEqual(['evil.manifest.xml', 'evil.part.0', 'out', 'x']);
  });

  it('a gzip stream of two members, or with bytes after its member: the format has one', async () => {
    const dir = fresh();
    writeFileSync(join(dir, 'disk.img'), Buffer.alloc(20_000, 'ab'));
    const tar = execFileSync('tar', ['-c', '--owner', '0', '--group', '0', '--format=gnu', '-C', dir, 'disk.img']);
    for (const [what, gz] of [['two members', Buffer.concat([gzipSync(tar.subarray(0, 4096)), gzipSync(tar.subarray(4096))])], ['trailing zeros', Buffer.concat([gzipSync(tar), Buffer.alloc(16)])]] as const) {
      const src = fresh();
      const out = join(src, 'out');
      mkdirSync(out);
      writeSignedBundle(src, 'multi', tar, tar.length, gz);
      const r = await runCli('ec2-unbundle', ['-m', join(src, 'multi.manifest.xml'), '-k', key('user-key.pem'), '-s', src, '-d', out, '--batch']);
      expectOneLineError(r, 254, /not valid gzip data \(data follows the gzip member, and a bundle holds one member\)/);
      expect(readdirSync(out), what).toEqual([]);
    }
  });
});
