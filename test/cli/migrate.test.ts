import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEc2Standin, type Ec2Standin, type StandinImage } from '../helpers/ec2-standin.js';
import { readCase, sha1File } from '../helpers/images.js';
import { key, reference, ROOT } from '../helpers/paths.js';
import { runCli, runProcess, type RunResult } from '../helpers/run.js';

const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'amitools-migrate-'));
  dirs.push(d);
  return d;
}

/** A writable copy of a fixture manifest in a fresh directory. */
function copyManifest(caseDir: string, file: string, as = file): { dir: string; path: string } {
  const dir = scratch();
  const path = join(dir, as);
  copyFileSync(reference(caseDir, file), path);
  chmodSync(path, 0o644);
  return { dir, path };
}

const field = (xml: string, name: string) => new RegExp(`<${name}[^>]*>([^<]*)</${name}>`).exec(xml)?.[1];

/** Independent oracle: openssl decrypts an RSA PKCS#1 v1.5 hex field. */
function opensslDecrypt(hex: string, keyPath: string): string {
  return execFileSync('openssl', ['pkeyutl', '-decrypt', '-inkey', keyPath], { input: Buffer.from(hex, 'hex') }).toString('latin1');
}

/** The original's recorded output: '# --- stdout ---' and '# --- stderr ---' sections. */
function recordedOutput(caseDir: string): { stdout: string; stderr: string } {
  const text = readFileSync(reference(caseDir, 'migrate-output.txt'), 'utf8');
  const [, out = '', err = ''] = /# --- stdout ---\n([\s\S]*?)# --- stderr ---\n([\s\S]*)$/.exec(text) ?? [];
  return { stdout: out, stderr: err };
}

const CLEAN_ENV = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', AWS_EC2_METADATA_DISABLED: 'true', AWS_PROFILE: '', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', EC2_AMITOOL_HOME: '' };

function migrate(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<RunResult> {
  return runCli('ec2-migrate-manifest', args, { env: { ...CLEAN_ENV, ...env }, cwd });
}

/** The fixture cases: the original's command line (paths made absolute) and files. */
const CASES = {
  migrated: {
    manifest: 'tiny.img.manifest.xml', source: 'tiny', cert: key('user-cert.pem'), key: key('user-key.pem'),
    flags: ['--no-mapping', '--kernel', 'aki-aaaa1111', '--ramdisk', 'ari-bbbb2222', '--ec2cert', key('ec2-cert.pem'), '--batch'],
  },
  'migrated-options': {
    manifest: 'customname.manifest.xml', source: 'options', cert: key('user4096-cert.pem'), key: key('user4096-key.pem'),
    flags: ['--no-mapping', '--kernel', 'aki-aaaa1111', '--ec2cert', key('ec2-cert.pem'), '--batch'],
  },
} as const;

describe('ec2-migrate-manifest reproduces the original (fixtures migrated, migrated-options)', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: same flags plus --keep-ec2-key give the original's file byte for byte`, async () => {
      const { dir, path } = copyManifest(name, `${c.manifest}.bak`, c.manifest);
      const r = await migrate(['-m', c.manifest, '-c', c.cert, '-k', c.key, ...c.flags, '--keep-ec2-key'], {}, dir);
      const want = recordedOutput(name);
      expect(r.stderr).toBe(want.stderr);
      expect(r.stdout).toBe(want.stdout);
      expect(r.code).toBe(0);
      expect(readFileSync(path).equals(readFileSync(reference(name, c.manifest)))).toBe(true);
      expect(readFileSync(`${path}.bak`).equals(readFileSync(reference(name, `${c.manifest}.bak`)))).toBe(true);
    });
  }
});

describe('ec2-migrate-manifest re-encrypts for the EC2 certificate', () => {
  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: --ec2cert re-encrypts key and IV; the result unbundles byte-exact with the original parts`, async () => {
      const { dir, path } = copyManifest(name, `${c.manifest}.bak`, c.manifest);
      const before = readFileSync(path, 'utf8');
      const r = await migrate(['-m', path, '-c', c.cert, '-k', c.key, ...c.flags], {}, dir);
      expect(r.code, r.stderr).toBe(0);
      const after = readFileSync(path, 'utf8');
      const src = readCase(c.source);
      for (const [f, want] of [['ec2_encrypted_key', src.decrypted.key_hex], ['ec2_encrypted_iv', src.decrypted.iv_hex]] as const) {
        expect(field(after, f)).not.toBe(field(before, f)); // new random padding: really re-encrypted
        expect(field(after, f)).toHaveLength(512); // 2048-bit stand-in EC2 key
        expect(opensslDecrypt(field(after, f)!, key('ec2-key.pem'))).toBe(want);
      }
      expect(opensslDecrypt(field(after, 'user_encrypted_key')!, c.key)).toBe(src.decrypted.key_hex);
      expect(field(after, 'user_encrypted_key')).toBe(field(before, 'user_encrypted_key'));
      // Everything but the EC2 fields and the signature equals the original's migrated file.
      const mask = (x: string) => x.replace(/<(ec2_encrypted_key|ec2_encrypted_iv|signature)([^>]*)>[0-9a-f]+</g, '<$1$2>X<');
      expect(mask(after)).toBe(mask(readFileSync(reference(name, c.manifest), 'utf8')));

      const out = join(dir, 'out');
      mkdirSync(out);
      const u = await runCli('ec2-unbundle', ['-m', path, '-k', c.key, '-s', reference(c.source), '-d', out, '--batch']);
      expect(u.code, u.stderr).toBe(0);
      expect(sha1File(join(out, src.tar.member_name))).toBe(src.image.sha1);
    });
  }

  it('rewrites a symlinked manifest where it points, keeping its mode', async () => {
    const { dir, path } = copyManifest('tiny', 'tiny.img.manifest.xml', 'real.manifest.xml');
    chmodSync(path, 0o600);
    const link = join(dir, 'tiny.img.manifest.xml');
    symlinkSync('real.manifest.xml', link);
    const r = await migrate(['-m', link, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '--no-mapping', '--kernel', 'aki-aaaa1111', '--ramdisk', 'ari-bbbb2222', '--keep-ec2-key', '--batch']);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(path).equals(readFileSync(reference('migrated', 'tiny.img.manifest.xml')))).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${link}.bak`).equals(readFileSync(reference('tiny', 'tiny.img.manifest.xml')))).toBe(true);
  });

  it("finds the region's certificate like ec2-bundle-image (us-gov-west-1 -> cert-ec2-gov.pem)", async () => {
    const { dir, path } = copyManifest('tiny', 'tiny.img.manifest.xml');
    const home = join(dir, 'home');
    mkdirSync(join(home, 'etc', 'ec2', 'amitools'), { recursive: true });
    copyFileSync(key('ec2-cert.pem'), join(home, 'etc', 'ec2', 'amitools', 'cert-ec2-gov.pem'));
    const r = await migrate(['-m', path, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '--no-mapping', '--region', 'us-gov-west-1', '--batch'], { EC2_AMITOOL_HOME: home });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`Backing up manifest...\nSuccessfully migrated ${path}\nIt is now suitable for use in us-gov-west-1.\n`);
    // No kernel/ramdisk before or after: no removal warning.
    expect(r.stderr).toBe('');
    const after = readFileSync(path, 'utf8');
    expect(field(after, 'ec2_encrypted_key')).not.toBe(field(readFileSync(`${path}.bak`, 'utf8'), 'ec2_encrypted_key'));
    expect(opensslDecrypt(field(after, 'ec2_encrypted_iv')!, key('ec2-key.pem'))).toBe(readCase('tiny').decrypted.iv_hex);
  });

  it('keeps the EC2 fields, and says so, when no certificate for the region can be found', async () => {
    const file = 'cert-ec2-cn-north-1.pem';
    // Precondition of this test: nothing installed where the lookup goes.
    expect(existsSync(join(ROOT, 'certs', file)) || existsSync(join('/opt/aws/amitools/ec2/etc/ec2/amitools', file))).toBe(false);
    const { dir, path } = copyManifest('tiny', 'tiny.img.manifest.xml');
    const r = await migrate(['-m', path, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '--no-mapping', '--region', 'cn-north-1', '--batch'], { EC2_AMITOOL_HOME: join(dir, 'empty') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^No EC2 certificate cert-ec2-cn-north-1\.pem found for cn-north-1: kept the existing ec2_encrypted_key and ec2_encrypted_iv\..*\n$/);
    const before = readFileSync(`${path}.bak`, 'utf8');
    const after = readFileSync(path, 'utf8');
    expect(field(after, 'ec2_encrypted_key')).toBe(field(before, 'ec2_encrypted_key'));
    expect(field(after, 'signature')).toBe(field(before, 'signature')); // nothing else changed either
  });
});

// Recorded shapes: the options bundle's kernel/ramdisk live in us-east-1; eu-west-1 has the same files in its own bucket.
const OWNER = '137112412989';
const WORLD: { regions: string[]; images: Record<string, StandinImage[]> } = {
  regions: ['us-east-1', 'eu-west-1', 'ap-southeast-2'],
  images: {
    'us-east-1': [
      { imageId: 'aki-12345678', type: 'kernel', ownerId: OWNER, ownerAlias: 'amazon', location: 'ec2-public-images/vmlinuz-2.6.21.7-2.fc8xen.manifest.xml', architecture: 'i386' },
      { imageId: 'ari-87654321', type: 'ramdisk', ownerId: OWNER, ownerAlias: 'amazon', location: 'ec2-public-images/initrd-2.6.21.7-2.fc8xen.manifest.xml', architecture: 'i386' },
    ],
    'eu-west-1': [
      { imageId: 'ari-0000beef', type: 'ramdisk', ownerId: OWNER, location: 'ec2-public-images-eu/vmlinuz-2.6.21.7-2.fc8xen.manifest.xml', architecture: 'i386' },
      { imageId: 'aki-7e0d250a', type: 'kernel', ownerId: OWNER, ownerAlias: 'amazon', location: 'ec2-public-images-eu/vmlinuz-2.6.21.7-2.fc8xen.manifest.xml', architecture: 'i386' },
      { imageId: 'ari-7d0d2509', type: 'ramdisk', ownerId: OWNER, ownerAlias: 'amazon', location: 'ec2-public-images-eu/initrd-2.6.21.7-2.fc8xen.manifest.xml', architecture: 'i386' },
    ],
    'ap-southeast-2': [
      { imageId: 'aki-31990e0b', type: 'kernel', ownerId: OWNER, ownerAlias: 'amazon', location: 'ec2-public-images-ap-southeast-2/vmlinuz-2.6.21.7-2.fc8xen.manifest.xml', architecture: 'i386' },
    ],
  },
};

describe('ec2-migrate-manifest maps kernel and ramdisk through EC2 (stand-in Query API)', () => {
  let ec2: Ec2Standin;
  beforeAll(async () => { ec2 = await startEc2Standin(WORLD); });
  afterAll(async () => { await ec2.close(); });
  const opts = () => ['-c', key('user4096-cert.pem'), '-k', key('user4096-key.pem'), '--ec2cert', key('ec2-cert.pem'), '--batch'];
  const calls = () => ec2.log.splice(0).map((r) => `${r.region} ${r.action} ${Object.values(r.params).join(' ')}`.trim());

  it('chooses the matching ids in the target region, with -a/-s', async () => {
    const { path } = copyManifest('options', 'customname.manifest.xml');
    ec2.log.length = 0;
    const r = await migrate(['-m', path, ...opts(), '--region', 'eu-west-1', '-a', 'AKIDFLAGEXAMPLE', '-s', 'secret'], { AMITOOLS_EC2_ENDPOINT: ec2.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`Backing up manifest...\nSuccessfully migrated ${path}\nIt is now suitable for use in eu-west-1.\n`);
    expect(r.stderr).toBe('');
    const after = readFileSync(path, 'utf8');
    expect(field(after, 'kernel_id')).toBe('aki-7e0d250a');
    expect(field(after, 'ramdisk_id')).toBe('ari-7d0d2509');
    expect(calls()).toEqual([
      'eu-west-1 DescribeRegions',
      'us-east-1 DescribeImages aki-12345678 ari-87654321',
      `eu-west-1 DescribeImages ${OWNER}`,
    ]);
  });

  it('retries a throttled EC2 request, announcing it as S3 retries are', async () => {
    const { path } = copyManifest('options', 'customname.manifest.xml');
    ec2.throttleNext = 1;
    const r = await migrate(['-m', path, ...opts(), '--region', 'eu-west-1', '-a', 'AKIDFLAGEXAMPLE', '-s', 'secret'], { AMITOOLS_EC2_ENDPOINT: ec2.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^Retrying DescribeRegionsCommand in eu-west-1 in \d+\.\ds \(attempt 2 of 3\): HTTP 503 RequestLimitExceeded$/m);
    expect(field(readFileSync(path, 'utf8'), 'kernel_id')).toBe('aki-7e0d250a');
    calls();
  });

  it('--debug shows the calls but never the secret key', async () => {
    const { path } = copyManifest('options', 'customname.manifest.xml');
    const secret = 'sEcReT/DoNotPrintMe+0123456789abcdefghij';
    const r = await migrate(['-m', path, ...opts(), '--region', 'eu-west-1', '-a', 'AKIDFLAGEXAMPLE', '-s', secret, '--debug'], { AMITOOLS_EC2_ENDPOINT: ec2.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('DEBUG: aki-12345678 (us-east-1) -> aki-7e0d250a (eu-west-1)');
    expect(r.stderr + r.stdout).not.toContain(secret);
    calls();
  });

  it("takes credentials from the SDK's chain when -a/-s are absent; --ramdisk wins, and one unknown there is warned about", async () => {
    const { path } = copyManifest('options', 'customname.manifest.xml');
    ec2.log.length = 0;
    const r = await migrate(['-m', path, ...opts(), '--region', 'eu-west-1', '--ramdisk', 'ari-11112222'], { AMITOOLS_EC2_ENDPOINT: ec2.url });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('The following identifiers do not exist in the target region:\n  [ari-11112222]\n');
    const after = readFileSync(path, 'utf8');
    expect(field(after, 'kernel_id')).toBe('aki-7e0d250a');
    expect(field(after, 'ramdisk_id')).toBe('ari-11112222');
    expect(calls()).toEqual([
      'eu-west-1 DescribeRegions',
      'us-east-1 DescribeImages aki-12345678',
      `eu-west-1 DescribeImages ${OWNER}`,
      'eu-west-1 DescribeImages ari-11112222',
    ]);
  });

  it('fails naming the id when the target region has no match, leaving the manifest untouched', async () => {
    const { path } = copyManifest('options', 'customname.manifest.xml');
    ec2.log.length = 0;
    const r = await migrate(['-m', path, ...opts(), '--region', 'ap-southeast-2'], { AMITOOLS_EC2_ENDPOINT: ec2.url });
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: Mapping for 'ari-87654321' not found: no ramdisk of owner 137112412989 at 'initrd-2\.6\.21\.7-2\.fc8xen\.manifest\.xml' in ap-southeast-2; give --ramdisk or use --no-mapping\.\n$/);
    expect(r.stdout).toBe('');
    expect(readFileSync(path).equals(readFileSync(reference('options', 'customname.manifest.xml')))).toBe(true);
    expect(existsSync(`${path}.bak`)).toBe(false);
    expect(calls()).toEqual([
      'ap-southeast-2 DescribeRegions',
      'us-east-1 DescribeImages aki-12345678 ari-87654321',
      `ap-southeast-2 DescribeImages ${OWNER}`,
    ]);
  });

  it('needs --region unless --no-mapping (the original\'s message)', async () => {
    const { path } = copyManifest('options', 'customname.manifest.xml');
    const r = await migrate(['-m', path, ...opts()], { AMITOOLS_EC2_ENDPOINT: ec2.url });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("If using automatic mapping, --region must be provided.\nTry 'ec2-migrate-manifest --help'\n");
    expect(calls()).toEqual([]);
  });
});

describe('ec2-migrate-manifest asks before removing a kernel or ramdisk (on a terminal, without --batch)', () => {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  // util-linux script(1) gives the command a pseudo-terminal and passes our answer to it.
  const onTerminal = (path: string, answer: string) => runProcess('script', ['-qec', [process.execPath, join(ROOT, 'bin', 'ec2-migrate-manifest.js'),
    '-m', path, '-c', key('user4096-cert.pem'), '-k', key('user4096-key.pem'), '--no-mapping', '--keep-ec2-key'].map(q).join(' '), '/dev/null'],
  { input: answer, env: CLEAN_ENV });

  it('stops on no, leaving the manifest and no backup', async () => {
    const { path } = copyManifest('options', 'customname.manifest.xml');
    const r = await onTerminal(path, 'n\n');
    expect(r.stdout).toContain('This operation will remove the kernel and/or ramdisk associated with');
    expect(r.stdout).toContain('Are you sure you want to continue? [y/N]');
    expect(r.stdout).toContain(`ERROR: Migration cancelled; '${path}' was left unchanged.`);
    expect(r.code).toBe(254);
    expect(readFileSync(path).equals(readFileSync(reference('options', 'customname.manifest.xml')))).toBe(true);
    expect(existsSync(`${path}.bak`)).toBe(false);
  });

  it('goes on with yes', async () => {
    const { path } = copyManifest('options', 'customname.manifest.xml');
    const r = await onTerminal(path, 'y\n');
    expect(r.stdout).toContain(`Successfully migrated ${path}`);
    expect(r.code).toBe(0);
    const after = readFileSync(path, 'utf8');
    expect(after).not.toContain('<kernel_id>');
    expect(after).not.toContain('<ramdisk_id>');
  });
});

describe('ec2-migrate-manifest refuses bad input: one line, non-zero exit, manifest untouched', () => {
  const base = ['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '--no-mapping', '--batch'];

  async function refuses(content: Buffer | string, args: string[], expected: RegExp, code = 254, setup?: (path: string) => void): Promise<void> {
    const dir = scratch();
    const path = join(dir, 'tiny.img.manifest.xml');
    writeFileSync(path, content);
    setup?.(path);
    const bakBefore = existsSync(`${path}.bak`) ? readFileSync(`${path}.bak`) : undefined;
    const r = await migrate(['-m', path, ...args]);
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(expected);
    expect(lines).toHaveLength(code === 1 ? 2 : 1);
    expect(readFileSync(path).equals(Buffer.from(content))).toBe(true);
    if (bakBefore) expect(readFileSync(`${path}.bak`).equals(bakBefore)).toBe(true);
    else expect(existsSync(`${path}.bak`)).toBe(false);
  }

  const tiny = readFileSync(reference('tiny', 'tiny.img.manifest.xml'), 'utf8');

  it('a tampered manifest', async () => {
    const tampered = tiny.replace('<size>1048576</size>', '<size>1048577</size>');
    expect(tampered).not.toBe(tiny);
    await refuses(tampered, base, /^ERROR: Bad manifest '.*tiny\.img\.manifest\.xml': Manifest fails authentication\.$/);
  });

  it('a certificate that did not sign it', async () => {
    await refuses(tiny, ['-c', key('user4096-cert.pem'), '-k', key('user4096-key.pem'), '--no-mapping', '--batch'], /^ERROR: Bad manifest '.*': Manifest fails authentication\.$/);
  });

  it('a private key that is not the certificate\'s', async () => {
    await refuses(tiny, ['-c', key('user-cert.pem'), '-k', key('user4096-key.pem'), '--no-mapping', '--batch'], /^ERROR: the private key .*user4096-key\.pem does not belong to the certificate .*user-cert\.pem/);
  });

  it('an existing .bak', async () => {
    await refuses(tiny, base, /^ERROR: Backup file '.*tiny\.img\.manifest\.xml\.bak' already exists\. Please delete or rename it and try again\.$/, 254,
      (p) => writeFileSync(`${p}.bak`, 'an older backup'));
  });

  it('an unreadable manifest: not there, a directory, or not text', async () => {
    const dir = scratch();
    for (const m of [join(dir, 'nope.manifest.xml'), dir]) {
      const r = await migrate(['-m', m, ...base]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`--manifest has invalid value '${m}': File does not exist or is not a file.\nTry 'ec2-migrate-manifest --help'\n`);
    }
    await refuses(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0xfe, 0x00, 0x01]), base, /^ERROR: Bad manifest '.*': not well-formed XML/);
  });

  it('XML that is not a manifest, and an older manifest version', async () => {
    await refuses("<?xml version='1.0'?><ListBucketResult><Name>b</Name></ListBucketResult>", base, /^ERROR: Bad manifest '.*': not an AMI manifest \(the root element is not <manifest>\)\.$/);
    await refuses(tiny.replace('<version>2007-10-10</version>', '<version>2007-08-29</version>'), base, /^ERROR: Bad manifest '.*': manifest version 2007-08-29 is not supported/);
  });

  it('--keep-ec2-key with an --ec2cert the EC2 fields cannot have been made for', async () => {
    await refuses(tiny, [...base, '--keep-ec2-key', '--ec2cert', key('user4096-cert.pem')], /^ERROR: the manifest's ec2_encrypted_key was not encrypted for .*user4096-cert\.pem \(2048-bit value, 4096-bit key\), so EC2's key cannot be kept; re-encrypt it for that certificate instead \(--keep-ec2-key\)$/);
  });

  it('missing mandatory flags', async () => {
    const r = await migrate(['-c', key('user-cert.pem'), '-k', key('user-key.pem'), '--no-mapping']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("missing mandatory parameter: --manifest\nTry 'ec2-migrate-manifest --help'\n");
  });
});
