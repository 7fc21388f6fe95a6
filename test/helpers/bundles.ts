import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
