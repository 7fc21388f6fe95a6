import { execFileSync } from 'node:child_process';
import { constants, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ToolError } from '../../src/errors.js';
import {
  assertKeyMatchesCertificate, decryptPkcs1v15, decryptWithKey, encryptForCertificate, loadCertificate, loadPrivateKey, signHex, verifyHex,
} from '../../src/crypto/keys.js';
import { parseManifest } from '../../src/format/manifest.js';
import { scratch } from '../helpers/bundles.js';
import { AWS_CERTS, HAVE_AWS_CERTS, NO_AWS_CERTS_REASON, REFERENCE, key, reference, skipNotice } from '../helpers/paths.js';

skipNotice(!HAVE_AWS_CERTS, NO_AWS_CERTS_REASON);

interface CaseJson {
  manifest: { file: string };
  keys: { user_cert: string; user_key: string; ec2_key?: string | null };
  decrypted?: { key_hex: string; iv_hex: string };
}

/** The bundles made by the original, with the keys they were made with. */
const CASES = readdirSync(REFERENCE)
  .map((c) => ({ name: c, json: JSON.parse(readFileSync(reference(c, 'case.json'), 'utf8')) as CaseJson }))
  .filter((c) => c.json.decrypted);

const pkcs1 = (pem: string) => pem.replace(/-key\.pem$/, '-key.pkcs1.pem');

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('keys'); });
afterAll(() => tmp.cleanup());

const openssl = (args: string[], input?: Buffer) => execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

describe('decryptWithKey on the original bundles', () => {
  it('has the seven bundle cases', () => {
    expect(CASES.map((c) => c.name).sort()).toEqual(['manyparts', 'multipart', 'options', 'realcert', 'sparse', 'sparse-enddata', 'tiny']);
  });

  for (const { name, json } of CASES) {
    it(`${name}: user_encrypted_key/iv decrypt with the user key, PKCS#8 and PKCS#1`, () => {
      const m = parseManifest(readFileSync(reference(name, json.manifest.file), 'utf8'));
      const userKey = join(REFERENCE, name, json.keys.user_key);
      for (const path of [userKey, pkcs1(userKey)]) {
        const k = loadPrivateKey(path);
        expect(decryptWithKey(k, m.userEncryptedKey, 'user_encrypted_key')).toBe(json.decrypted!.key_hex);
        expect(decryptWithKey(k, m.userEncryptedIv, 'user_encrypted_iv')).toBe(json.decrypted!.iv_hex);
      }
      if (json.keys.ec2_key) {
        const ec2Key = join(REFERENCE, name, json.keys.ec2_key);
        for (const path of [ec2Key, pkcs1(ec2Key)]) {
          const k = loadPrivateKey(path);
          expect(decryptWithKey(k, m.ec2EncryptedKey, 'ec2_encrypted_key')).toBe(json.decrypted!.key_hex);
          expect(decryptWithKey(k, m.ec2EncryptedIv, 'ec2_encrypted_iv')).toBe(json.decrypted!.iv_hex);
        }
      }
    });
  }

  it.skipIf(!HAVE_AWS_CERTS)('realcert: the EC2 fields are encrypted for the real 1024-bit cert-ec2.pem (256 hex digits)', () => {
    const m = parseManifest(readFileSync(reference('realcert', 'realcert.img.manifest.xml'), 'utf8'));
    expect(m.ec2EncryptedKey).toHaveLength(256);
    expect(m.ec2EncryptedIv).toHaveLength(256);
    expect(m.userEncryptedKey).toHaveLength(512);
    const aws = loadCertificate(join(AWS_CERTS, 'cert-ec2.pem'));
    expect(aws.publicKey.asymmetricKeyDetails?.modulusLength).toBe(1024);
    expect(encryptForCertificate(aws, 'a'.repeat(32))).toMatch(/^[0-9a-f]{256}$/);
  });

  it('a wrong key gives the clear mismatch error', () => {
    const tiny = parseManifest(readFileSync(reference('tiny', 'tiny.img.manifest.xml'), 'utf8'));
    const msg = /^the private key does not match the manifest's user_encrypted_key.*; use the key the bundle was made with$/;
    expect(() => decryptWithKey(loadPrivateKey(key('ec2-key.pem')), tiny.userEncryptedKey, 'user_encrypted_key')).toThrow(msg);
    expect(() => decryptWithKey(loadPrivateKey(key('user4096-key.pem')), tiny.userEncryptedKey, 'user_encrypted_key')).toThrow(msg);
    // 4096-bit ciphertext, 2048-bit key: says so.
    const options = parseManifest(readFileSync(reference('options', 'customname.manifest.xml'), 'utf8'));
    expect(() => decryptWithKey(loadPrivateKey(key('user-key.pem')), options.userEncryptedKey, 'user_encrypted_key'))
      .toThrow(/encrypted for a 4096-bit key, this key is 2048-bit/);
    // A corrupted field.
    const flipped = (tiny.userEncryptedKey[10] === '0' ? '1' : '0');
    const corrupt = tiny.userEncryptedKey.slice(0, 10) + flipped + tiny.userEncryptedKey.slice(11);
    expect(() => decryptWithKey(loadPrivateKey(key('user-key.pem')), corrupt, 'user_encrypted_key')).toThrow(msg);
    expect(() => decryptWithKey(loadPrivateKey(key('user-key.pem')), 'xyz', 'user_encrypted_key')).toThrow(/not a hex value/);
  });

  it('needs no node flags (this Node refuses PKCS#1 v1.5 in privateDecrypt, or decrypts with implicit rejection)', () => {
    // Documents why decryptWithKey does the unpadding itself: with RSA_PKCS1_PADDING, Node 20 throws unless started
    // with --security-revert=CVE-2023-46809; newer OpenSSL builds return random bytes for a wrong key instead.
    const k = loadPrivateKey(key('user-key.pem'));
    const ct = Buffer.from(encryptForCertificate(loadCertificate(key('user-cert.pem')), 'abc'), 'hex');
    let nodeSays: string;
    try {
      nodeSays = privateDecrypt({ key: k, padding: constants.RSA_PKCS1_PADDING }, ct).toString();
    } catch (err) {
      nodeSays = (err as Error).message;
    }
    expect(nodeSays === 'abc' || /CVE-2023-46809/.test(nodeSays)).toBe(true);
    expect(decryptWithKey(k, ct.toString('hex'), 'test')).toBe('abc');
  });
});

describe('PKCS#1 v1.5 unpadding (hand-made blocks through raw RSA)', () => {
  const cert = () => loadCertificate(key('user-cert.pem'));
  /** Raw-RSA-encrypts the 256-byte block 00 02 PS 00 M (or whatever `header`/`psLength` make it). */
  function block(psLength: number, opts: { header?: number[]; separator?: boolean; psByte?: number } = {}): string {
    const header = opts.header ?? [0x00, 0x02];
    const sepLen = opts.separator === false ? 0 : 1;
    const m = Buffer.alloc(256 - header.length - psLength - sepLen, 'm');
    const em = Buffer.concat([Buffer.from(header), Buffer.alloc(psLength, opts.psByte ?? 0x5a), Buffer.alloc(sepLen), m]);
    expect(em).toHaveLength(256);
    return publicEncrypt({ key: cert().publicKey, padding: constants.RSA_NO_PADDING }, em).toString('hex');
  }
  const k = () => loadPrivateKey(key('user-key.pem'));
  const mismatch = /does not match the manifest's field/;

  it('decryptPkcs1v15 gives raw bytes (any value) or undefined for a key that does not fit', () => {
    const raw = Buffer.from([0, 1, 2, 0xff, 0x80, 0]);
    const ct = publicEncrypt({ key: cert().publicKey, padding: constants.RSA_PKCS1_PADDING }, raw);
    expect(decryptPkcs1v15(k(), ct)).toEqual(raw);
    expect(decryptPkcs1v15(loadPrivateKey(key('ec2-key.pem')), ct)).toBeUndefined();
    expect(decryptPkcs1v15(k(), Buffer.alloc(512, 1))).toBeUndefined();
  });
  it('accepts 8 padding bytes, the minimum', () => {
    expect(decryptWithKey(k(), block(8), 'field')).toBe('m'.repeat(256 - 2 - 8 - 1));
  });
  it('rejects fewer than 8 padding bytes, a wrong block type, and no separator', () => {
    expect(() => decryptWithKey(k(), block(7), 'field')).toThrow(mismatch);
    expect(() => decryptWithKey(k(), block(0), 'field')).toThrow(mismatch);
    expect(() => decryptWithKey(k(), block(8, { header: [0x00, 0x01], psByte: 0xff }), 'field')).toThrow(mismatch);
    expect(() => decryptWithKey(k(), block(254, { separator: false }), 'field')).toThrow(mismatch);
  });
});

describe('encryptForCertificate', () => {
  it('RSAES-PKCS1-v1_5 that openssl pkeyutl -decrypt reads, padded hex of 2 × modulus bytes', () => {
    for (const [cert, priv, hexLen] of [['user-cert.pem', 'user-key.pem', 512], ['user4096-cert.pem', 'user4096-key.pem', 1024], ['ec2-cert.pem', 'ec2-key.pkcs1.pem', 512]] as const) {
      const text = '0123456789abcdef0123456789abcdef';
      const hex = encryptForCertificate(loadCertificate(key(cert)), text);
      expect(hex).toMatch(new RegExp(`^[0-9a-f]{${hexLen}}$`));
      const f = join(tmp.dir, `${cert}.bin`);
      writeFileSync(f, Buffer.from(hex, 'hex'));
      expect(openssl(['pkeyutl', '-decrypt', '-inkey', key(priv), '-pkeyopt', 'rsa_padding_mode:pkcs1', '-in', f]).toString('latin1')).toBe(text);
      // Random padding: never the same twice; our decryption reads it back.
      expect(encryptForCertificate(loadCertificate(key(cert)), text)).not.toBe(hex);
      expect(decryptWithKey(loadPrivateKey(key(priv)), hex, 'test')).toBe(text);
    }
  });

  it('decryptWithKey reads what openssl pkeyutl -encrypt wrote', () => {
    const f = join(tmp.dir, 'plain.txt');
    writeFileSync(f, 'fedcba9876543210fedcba9876543210');
    const ct = openssl(['pkeyutl', '-encrypt', '-certin', '-inkey', key('user4096-cert.pem'), '-pkeyopt', 'rsa_padding_mode:pkcs1', '-in', f]);
    expect(decryptWithKey(loadPrivateKey(key('user4096-key.pkcs1.pem')), ct.toString('hex'), 'test')).toBe('fedcba9876543210fedcba9876543210');
  });

  it('keeps leading zero bytes (fixed-width hex) and accepts fields written without them', () => {
    const cert = loadCertificate(key('user-cert.pem'));
    const k = loadPrivateKey(key('user-key.pem'));
    let found: string | undefined;
    for (let i = 0; i < 2000 && !found; i++) {
      const hex = encryptForCertificate(cert, 'x');
      if (hex.startsWith('00')) found = hex;
    }
    expect(found, 'a ciphertext with a leading zero byte within 2000 tries').toBeDefined();
    expect(found).toHaveLength(512);
    expect(decryptWithKey(k, found!, 'test')).toBe('x');
    expect(decryptWithKey(k, found!.replace(/^(00)+/, ''), 'test')).toBe('x');
  });
});

describe('signHex / verifyHex', () => {
  for (const c of ['tiny', 'options', 'realcert']) {
    it(`${c}: signing the fixture's signed text with its key gives the fixture's signature`, () => {
      const json = CASES.find((x) => x.name === c)!.json;
      const xml = readFileSync(reference(c, json.manifest.file), 'utf8');
      const { signedText: signed, signature: expected } = parseManifest(xml);
      const keyPath = join(REFERENCE, c, json.keys.user_key);
      expect(signHex(loadPrivateKey(keyPath), signed)).toBe(expected);
      expect(signHex(loadPrivateKey(pkcs1(keyPath)), signed)).toBe(expected);
      expect(verifyHex(loadCertificate(join(REFERENCE, c, json.keys.user_cert)), signed, expected)).toBe(true);
    });
  }

  it('is deterministic and accepted by openssl dgst -sha1 -verify', () => {
    const k = loadPrivateKey(key('user-key.pem'));
    const text = "<machine_configuration>é & ✓</image>";
    const sig = signHex(k, text);
    expect(sig).toMatch(/^[0-9a-f]{512}$/);
    expect(signHex(k, text)).toBe(sig);
    const pub = join(tmp.dir, 'pub.pem');
    const data = join(tmp.dir, 'data.txt');
    const sigFile = join(tmp.dir, 'sig.bin');
    writeFileSync(pub, createPublicKey(k).export({ type: 'spki', format: 'pem' }));
    writeFileSync(data, text, 'utf8');
    writeFileSync(sigFile, Buffer.from(sig, 'hex'));
    expect(openssl(['dgst', '-sha1', '-verify', pub, '-signature', sigFile, data]).toString()).toMatch(/Verified OK/);
    writeFileSync(data, text + ' ', 'utf8');
    expect(() => openssl(['dgst', '-sha1', '-verify', pub, '-signature', sigFile, data])).toThrow();
  });

  it('verifyHex rejects a changed text, the wrong certificate and malformed signatures', () => {
    const cert = loadCertificate(key('user-cert.pem'));
    const sig = signHex(loadPrivateKey(key('user-key.pem')), 'hello');
    expect(verifyHex(cert, 'hello', sig)).toBe(true);
    expect(verifyHex(cert, 'hellp', sig)).toBe(false);
    expect(verifyHex(loadCertificate(key('ec2-cert.pem')), 'hello', sig)).toBe(false);
    expect(verifyHex(cert, 'hello', sig.slice(2))).toBe(false);
    expect(verifyHex(cert, 'hello', 'zz' + sig.slice(2))).toBe(false);
    expect(verifyHex(cert, 'hello', '')).toBe(false);
  });
});

describe('loadPrivateKey / loadCertificate errors', () => {
  function messageOf(fn: () => unknown): string {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ToolError);
      expect((err as Error).message).not.toContain('\n');
      return (err as Error).message;
    }
    throw new Error('no error thrown');
  }

  it('accepts PKCS#1 and PKCS#8 PEM, and a file holding both a certificate and its key', () => {
    for (const f of ['user-key.pem', 'user-key.pkcs1.pem', 'ec2-key.pem', 'user4096-key.pkcs1.pem']) {
      expect(loadPrivateKey(key(f)).asymmetricKeyType).toBe('rsa');
    }
    expect(readFileSync(key('user-key.pkcs1.pem'), 'latin1')).toContain('BEGIN RSA PRIVATE KEY');
    const both = join(tmp.dir, 'both.pem');
    writeFileSync(both, readFileSync(key('user-cert.pem'), 'latin1') + readFileSync(key('user-key.pem'), 'latin1'));
    assertKeyMatchesCertificate(loadPrivateKey(both), loadCertificate(key('user-cert.pem')), both, 'user-cert.pem');
  });

  it('a certificate passed as the key', () => {
    expect(messageOf(() => loadPrivateKey(key('user-cert.pem')))).toBe(
      `${key('user-cert.pem')} is a certificate, not a private key: pass it with -c/--cert and the private key with -k`,
    );
  });

  it('a key passed as the certificate', () => {
    expect(messageOf(() => loadCertificate(key('user-key.pem')))).toMatch(/user-key\.pem is a private key, not a certificate/);
  });

  it('missing files, directories, garbage and public keys name the path', () => {
    const missing = join(tmp.dir, 'nope.pem');
    expect(messageOf(() => loadPrivateKey(missing))).toBe(`private key file '${missing}' does not exist`);
    expect(messageOf(() => loadCertificate(missing))).toBe(`certificate file '${missing}' does not exist`);
    const dir = join(tmp.dir, 'a-dir');
    mkdirSync(dir);
    expect(messageOf(() => loadPrivateKey(dir))).toMatch(/a-dir' is a directory/);
    const garbage = join(tmp.dir, 'garbage.pem');
    writeFileSync(garbage, 'this is not a key\n');
    expect(messageOf(() => loadPrivateKey(garbage))).toBe(`${garbage} is not a PEM private key (expected 'BEGIN RSA PRIVATE KEY' or 'BEGIN PRIVATE KEY')`);
    expect(messageOf(() => loadCertificate(garbage))).toMatch(/garbage\.pem is not an X\.509 certificate/);
    const pub = join(tmp.dir, 'public.pem');
    writeFileSync(pub, createPublicKey(loadPrivateKey(key('user-key.pem'))).export({ type: 'spki', format: 'pem' }));
    expect(messageOf(() => loadPrivateKey(pub))).toMatch(/public\.pem is not a PEM private key/);
  });

  it('an unreadable file', () => {
    const f = join(tmp.dir, 'secret.pem');
    writeFileSync(f, readFileSync(key('user-key.pem')), { mode: 0o000 });
    if (process.getuid?.() === 0) {
      // root reads any file: the key loads.
      expect(loadPrivateKey(f).asymmetricKeyType).toBe('rsa');
    } else {
      expect(messageOf(() => loadPrivateKey(f))).toBe(`cannot read private key file '${f}': permission denied`);
    }
  });

  it('passphrase-protected keys (PKCS#8 and traditional PEM)', () => {
    const p8 = join(tmp.dir, 'enc8.pem');
    const p1 = join(tmp.dir, 'enc1.pem');
    openssl(['pkey', '-in', key('user-key.pem'), '-aes128', '-passout', 'pass:secret', '-out', p8]);
    openssl(['rsa', '-in', key('user-key.pem'), '-aes128', '-traditional', '-passout', 'pass:secret', '-out', p1]);
    expect(readFileSync(p1, 'latin1')).toContain('Proc-Type: 4,ENCRYPTED');
    for (const f of [p8, p1]) expect(messageOf(() => loadPrivateKey(f))).toMatch(new RegExp(`the private key ${f} is protected by a passphrase`));
  });

  it('a non-RSA key', () => {
    const ec = join(tmp.dir, 'ec.pem');
    writeFileSync(ec, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(messageOf(() => loadPrivateKey(ec))).toBe(`the private key ${ec} is not an RSA key (ec); AMI bundles need an RSA key`);
  });

  it.skipIf(!HAVE_AWS_CERTS)("never checks dates: Amazon's expired certificates load", () => {
    for (const f of readdirSync(AWS_CERTS)) {
      const cert = loadCertificate(join(AWS_CERTS, f));
      expect(new Date(cert.validTo).getTime(), f).toBeLessThan(Date.now());
    }
  });
});

describe('assertKeyMatchesCertificate', () => {
  it('passes for a key pair in either key format', () => {
    const cert = loadCertificate(key('user-cert.pem'));
    assertKeyMatchesCertificate(loadPrivateKey(key('user-key.pem')), cert, 'k', 'c');
    assertKeyMatchesCertificate(loadPrivateKey(key('user-key.pkcs1.pem')), cert, 'k', 'c');
  });
  it('names both files when they do not belong together', () => {
    expect(() => assertKeyMatchesCertificate(loadPrivateKey(key('user-key.pem')), loadCertificate(key('user4096-cert.pem')), 'my-key.pem', 'my-cert.pem'))
      .toThrow('the private key my-key.pem does not belong to the certificate my-cert.pem; pass the key and certificate of the same key pair');
  });
});
