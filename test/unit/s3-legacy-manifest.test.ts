import { describe, expect, it } from 'vitest';
import { constants, createCipheriv, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import { decryptLegacyManifest, isLegacyEncryptedManifest } from '../../src/crypto/legacy-manifest.js';

// Builds a blob the way the original's Crypto.encryptasym does (version 2) or its older version 1 reader expects.
function encrypt(version: 1 | 2, text: string, publicKey: Parameters<typeof publicEncrypt>[0]): Buffer {
  const key = randomBytes(16);
  const iv = randomBytes(16);
  const wrapped = publicEncrypt({ key: publicKey as never, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([key, iv]));
  const c = createCipheriv('aes-128-cbc', key, iv);
  const body = Buffer.concat([c.update(text, 'utf8'), c.final()]);
  const len = version === 1 ? Buffer.from([wrapped.length]) : Buffer.from([wrapped.length >> 8, wrapped.length & 0xff]);
  return Buffer.concat([Buffer.from([version]), len, wrapped, body]);
}

describe('legacy encrypted manifests', () => {
  const xml = "<?xml version='1.0'?><manifest><version>2007-10-10</version>é</manifest>";
  const k1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const k2048 = generateKeyPairSync('rsa', { modulusLength: 2048 });

  it('tells XML from an encrypted blob', () => {
    expect(isLegacyEncryptedManifest(Buffer.from(xml))).toBe(false);
    expect(isLegacyEncryptedManifest(Buffer.from('  \n' + xml))).toBe(false);
    expect(isLegacyEncryptedManifest(encrypt(2, xml, k2048.publicKey))).toBe(true);
  });

  it('decrypts scheme version 1 (one length byte) and version 2 (two length bytes)', () => {
    expect(decryptLegacyManifest(encrypt(1, xml, k1024.publicKey), k1024.privateKey, 'm')).toBe(xml);
    expect(decryptLegacyManifest(encrypt(2, xml, k2048.publicKey), k2048.privateKey, 'm')).toBe(xml);
  });

  it('names a wrong key, an unknown version and a truncated blob', () => {
    expect(() => decryptLegacyManifest(encrypt(2, xml, k2048.publicKey), k1024.privateKey, 's3://b/m')).toThrow(/s3:\/\/b\/m.*not the key/);
    expect(() => decryptLegacyManifest(Buffer.from([7, 1, 2, 3]), k2048.privateKey, 'm')).toThrow(/version byte 7/);
    expect(() => decryptLegacyManifest(encrypt(2, xml, k2048.publicKey).subarray(0, 100), k2048.privateKey, 'm')).toThrow(/truncated/);
  });
});
