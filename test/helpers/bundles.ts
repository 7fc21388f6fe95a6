import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PART_SIZE, partCount, partName } from '../../src/format/part-name.js';
import { buildManifestXml, buildSignedText, type Manifest } from '../../src/format/manifest.js';
import { encryptForCertificate, loadCertificate, loadPrivateKey, signHex } from '../../src/crypto/keys.js';
import { key } from './paths.js';

/** A scratch directory removed by the returned cleanup. */
export function scratch(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `amitools-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The text of one manifest element (first occurrence), read with a regex so tests don't lean on our parser. */
export function field(xml: string, tag: string): string {
  const m = new RegExp(`<${tag}(?: [^>]*)?>([^<]*)</${tag}>`).exec(xml);
  if (!m) throw new Error(`no <${tag}> in manifest`);
  return m[1];
}

export function partEntries(xml: string): { filename: string; digest: string }[] {
  return [...xml.matchAll(/<part index='(\d+)'><filename>([^<]+)<\/filename><digest algorithm='SHA1'>([0-9a-f]+)<\/digest><\/part>/g)]
    .map((m) => ({ filename: m[2], digest: m[3] }));
}

/** The exact signed text: from <machine_configuration> through </image>. */
export function signedText(xml: string): string {
  const start = xml.indexOf('<machine_configuration>');
  const end = xml.indexOf('</image>') + '</image>'.length;
  return xml.slice(start, end);
}

/** RSA-decrypts a hex field with the openssl CLI. */
export function opensslDecryptHex(hex: string, keyPath: string, dir: string): string {
  const f = join(dir, 'field.bin');
  writeFileSync(f, Buffer.from(hex, 'hex'));
  return execFileSync('openssl', ['pkeyutl', '-decrypt', '-inkey', keyPath, '-in', f]).toString('latin1');
}

/** Verifies the manifest signature with the openssl CLI over the signed substring. */
export function opensslVerify(xml: string, certPath: string, dir: string): boolean {
  const pub = join(dir, 'pub.pem');
  writeFileSync(pub, execFileSync('openssl', ['x509', '-pubkey', '-noout', '-in', certPath]));
  writeFileSync(join(dir, 'signed.txt'), signedText(xml));
  writeFileSync(join(dir, 'sig.bin'), Buffer.from(field(xml, 'signature'), 'hex'));
  try {
    execFileSync('openssl', ['dgst', '-sha1', '-verify', pub, '-signature', join(dir, 'sig.bin'), join(dir, 'signed.txt')], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Masks what differs from run to run (and between bundlers): keys, IVs, parts, bundled size, signature, bundler. */
export function maskRandomFields(xml: string): string {
  return xml
    .replace(/<bundler>.*?<\/bundler>/, '<bundler>*</bundler>')
    .replace(/<bundled_size>\d+<\/bundled_size>/, '<bundled_size>*</bundled_size>')
    .replace(/(<(ec2|user)_encrypted_(key|iv)(?: [^>]*)?>)[0-9a-f]+/g, '$1*')
    .replace(/<parts count='\d+'>.*<\/parts>/, '<parts>*</parts>')
    .replace(/<signature>[0-9a-f]+<\/signature>/, '<signature>*</signature>');
}

/**
 * A valid bundle around any tar stream: gzipped, encrypted for user-cert.pem, cut into 10 MiB parts, the manifest
 * signed with user-key.pem. `imageSize` is the manifest's <size> (by default the tar's length); `gzip` is the
 * compressed stream (by default the tar at level 1).
 */
export function writeSignedBundle(dir: string, name: string, tar: Buffer, imageSize = tar.length, gzip = gzipSync(tar, { level: 1 })): void {
  const aesKey = randomBytes(16);
  const iv = randomBytes(16);
  const c = createCipheriv('aes-128-cbc', aesKey, iv);
  const enc = Buffer.concat([c.update(gzip), c.final()]);
  const count = partCount(enc.length);
  const parts = Array.from({ length: count }, (_, i) => {
    const data = enc.subarray(i * PART_SIZE, (i + 1) * PART_SIZE);
    const filename = partName(name, i, count);
    writeFileSync(join(dir, filename), data);
    return { filename, digest: createHash('sha1').update(data).digest('hex') };
  });
  const cert = loadCertificate(key('user-cert.pem'));
  const m: Manifest = {
    version: '2007-10-10', bundler: { name: 'test', version: '1', release: '0' }, architecture: 'x86_64',
    blockDeviceMappings: [], productCodes: [], name, user: '123456789012', type: 'machine', ancestry: [],
    digest: createHash('sha1').update(tar).digest('hex'), size: imageSize, bundledSize: enc.length,
    ec2EncryptedKey: encryptForCertificate(cert, aesKey.toString('hex')), userEncryptedKey: encryptForCertificate(cert, aesKey.toString('hex')),
    ec2EncryptedIv: encryptForCertificate(cert, iv.toString('hex')), userEncryptedIv: encryptForCertificate(cert, iv.toString('hex')),
    parts,
  };
  writeFileSync(join(dir, `${name}.manifest.xml`), buildManifestXml(m, signHex(loadPrivateKey(key('user-key.pem')), buildSignedText(m))));
}
