import type { KeyObject, X509Certificate } from 'node:crypto';
import { ToolError } from '../errors.js';
import { decryptWithKey, encryptForCertificate } from './keys.js';

/** The four RSA fields of a manifest that carry the bundle's AES key and IV. */
export interface KeyEnvelope {
  ec2EncryptedKey: string;
  userEncryptedKey: string;
  ec2EncryptedIv: string;
  userEncryptedIv: string;
}

/** The key and IV encrypted for one certificate: the plaintext is their 32-digit lowercase hex, as the original writes. */
export function wrapFor(cert: X509Certificate, key: Buffer, iv: Buffer): { encryptedKey: string; encryptedIv: string } {
  return { encryptedKey: encryptForCertificate(cert, key.toString('hex')), encryptedIv: encryptForCertificate(cert, iv.toString('hex')) };
}

/** The envelope of a new bundle: the key and IV for the user's certificate and for EC2's. */
export function wrapBundleKey(key: Buffer, iv: Buffer, userCert: X509Certificate, ec2Cert: X509Certificate): KeyEnvelope {
  const user = wrapFor(userCert, key, iv);
  const ec2 = wrapFor(ec2Cert, key, iv);
  return { ec2EncryptedKey: ec2.encryptedKey, userEncryptedKey: user.encryptedKey, ec2EncryptedIv: ec2.encryptedIv, userEncryptedIv: user.encryptedIv };
}

/** The AES key and IV from the user's copies, decrypted with the private key the bundle was made for. */
export function unwrapBundleKey(m: Pick<KeyEnvelope, 'userEncryptedKey' | 'userEncryptedIv'>, privateKey: KeyObject, keyPath?: string): { key: Buffer; iv: Buffer } {
  const field = (hex: string, what: string): Buffer => {
    const text = decryptWithKey(privateKey, hex, what, keyPath);
    if (!/^[0-9a-fA-F]{32}$/.test(text)) {
      throw new ToolError(`the manifest's ${what} does not decrypt to a 128-bit value as 32 hex digits; is ${keyPath ?? 'the key'} the right key?`, { code: 'KEY_INVALID' });
    }
    return Buffer.from(text, 'hex');
  };
  return { key: field(m.userEncryptedKey, 'user_encrypted_key'), iv: field(m.userEncryptedIv, 'user_encrypted_iv') };
}
