import { readFileSync } from 'node:fs';
import {
  X509Certificate, constants, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, sign, verify,
  type KeyObject,
} from 'node:crypto';
import { ToolError } from '../errors.js';

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ToolError(`${what} file '${path}' does not exist`);
    if (code === 'EISDIR') throw new ToolError(`${what} file '${path}' is a directory, not a PEM file`);
    if (code === 'EACCES' || code === 'EPERM') throw new ToolError(`cannot read ${what} file '${path}': permission denied`);
    throw new ToolError(`cannot read ${what} file '${path}': ${(err as Error).message}`, { cause: err });
  }
}

const hasCertificate = (pem: string) => pem.includes('-----BEGIN CERTIFICATE-----');
const hasPrivateKey = (pem: string) => /-----BEGIN (RSA |ENCRYPTED )?PRIVATE KEY-----/.test(pem);

/** The RSA private key in a PKCS#1 ('BEGIN RSA PRIVATE KEY') or PKCS#8 ('BEGIN PRIVATE KEY') PEM file. */
export function loadPrivateKey(path: string): KeyObject {
  const pem = readPem(path, 'private key').toString('latin1');
  if (!hasPrivateKey(pem) && hasCertificate(pem)) {
    throw new ToolError(`${path} is a certificate, not a private key: pass it with -c/--cert and the private key with -k`);
  }
  if (pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type:\s*4,ENCRYPTED/.test(pem)) {
    throw new ToolError(`the private key ${path} is protected by a passphrase; write an unencrypted copy first (openssl pkey -in ${path} -out <new file>)`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new ToolError(`${path} is not a PEM private key (expected 'BEGIN RSA PRIVATE KEY' or 'BEGIN PRIVATE KEY')`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new ToolError(`the private key ${path} is not an RSA key (${key.asymmetricKeyType ?? 'unknown type'}); AMI bundles need an RSA key`);
  }
  return key;
}

/** An X.509 certificate (PEM or DER). Validity dates are never checked: Amazon's EC2 certificates are long expired and still in use. */
export function loadCertificate(path: string): X509Certificate {
  const data = readPem(path, 'certificate');
  const text = data.toString('latin1');
  if (!hasCertificate(text) && hasPrivateKey(text)) {
    throw new ToolError(`${path} is a private key, not a certificate: pass it with -k/--privatekey and the certificate with -c/--cert`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(data);
  } catch (err) {
    throw new ToolError(`${path} is not an X.509 certificate (expected a PEM file with 'BEGIN CERTIFICATE')`, { cause: err });
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa') {
    throw new ToolError(`the certificate ${path} does not hold an RSA public key; AMI bundles need RSA`);
  }
  return cert;
}

const spki = (key: KeyObject) => key.export({ type: 'spki', format: 'der' });

export function assertKeyMatchesCertificate(key: KeyObject, cert: X509Certificate, keyPath: string, certPath: string): void {
  if (!spki(createPublicKey(key)).equals(spki(cert.publicKey))) {
    throw new ToolError(`the private key ${keyPath} does not belong to the certificate ${certPath}; pass the key and certificate of the same key pair`);
  }
}

function modulusBytes(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) throw new ToolError('cannot determine the RSA key size');
  return Math.ceil(bits / 8);
}

/** RSAES-PKCS1-v1_5 of `text` (ASCII) for the certificate's key: lowercase hex of 2 × modulus-size digits. */
export function encryptForCertificate(cert: X509Certificate, text: string): string {
  const k = modulusBytes(cert.publicKey);
  if (text.length > k - 11) throw new ToolError(`cannot encrypt ${text.length} bytes for a ${k * 8}-bit key`);
  const out = publicEncrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(text, 'latin1'));
  return out.toString('hex').padStart(2 * k, '0');
}

/**
 * RSAES-PKCS1-v1_5 decryption of raw bytes; undefined when the key does not fit.
 *
 * Node 20 refuses RSA_PKCS1_PADDING in privateDecrypt (CVE-2023-46809, the Marvin timing attack) unless started
 * with --security-revert. We do the raw RSA operation (RSA_NO_PADDING, blinded by OpenSSL) and strip the padding
 * here, checking every byte without early exit. The timing concern is about servers that act as decryption oracles
 * for remote callers; this runs locally on the user's own data, so nothing is exposed to an attacker.
 */
export function decryptPkcs1v15(key: KeyObject, ciphertext: Buffer): Buffer | undefined {
  const k = modulusBytes(key);
  if (ciphertext.length > k) return undefined;
  const c = ciphertext.length < k ? Buffer.concat([Buffer.alloc(k - ciphertext.length), ciphertext]) : ciphertext;
  try {
    return unpadPkcs1Type2(privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, c));
  } catch {
    return undefined; // ciphertext not below this key's modulus
  }
}

/** Decrypts a manifest's hex RSA field (it holds ASCII text) with the private key. */
export function decryptWithKey(key: KeyObject, hex: string, what: string, keyPath?: string): string {
  const which = keyPath ? `the private key ${keyPath}` : 'the private key';
  const mismatch = (detail = '') =>
    new ToolError(`${which} does not match the manifest's ${what}${detail}; use the key the bundle was made with`);
  if (!/^[0-9a-fA-F]*$/.test(hex) || hex.length === 0 || hex.length % 2 !== 0) throw new ToolError(`the manifest's ${what} is not a hex value`);
  const k = modulusBytes(key);
  const c = Buffer.from(hex, 'hex');
  if (c.length > k) throw mismatch(` (it was encrypted for a ${c.length * 8}-bit key, this key is ${k * 8}-bit)`);
  const plain = decryptPkcs1v15(key, c);
  // A wrong key yields a valid-looking block about once in 2^16 tries; the fields hold ASCII hex, so check for text.
  if (!plain || plain.length === 0 || !plain.every((b) => b >= 0x20 && b <= 0x7e)) throw mismatch();
  return plain.toString('latin1');
}

/** EM = 00 02 PS(>= 8 non-zero bytes) 00 M; returns M, or undefined when EM is not a valid type-2 block. */
function unpadPkcs1Type2(em: Buffer): Buffer | undefined {
  let bad = (em[0]! | (em[1]! ^ 2)) !== 0 ? 1 : 0;
  let sep = 0; // index of the first zero byte after the header, 0 while not found
  for (let i = 2; i < em.length; i++) {
    const isZero = em[i] === 0 ? 1 : 0;
    const first = isZero & (sep === 0 ? 1 : 0);
    sep = first ? i : sep;
  }
  bad |= sep === 0 ? 1 : 0;
  bad |= sep < 10 ? 1 : 0; // fewer than 8 padding bytes
  return bad ? undefined : em.subarray(sep + 1);
}

/** RSASSA-PKCS1-v1_5 with SHA-1 over the UTF-8 text, lowercase hex (deterministic). */
export function signHex(key: KeyObject, text: string): string {
  return sign('sha1', Buffer.from(text, 'utf8'), { key, padding: constants.RSA_PKCS1_PADDING }).toString('hex').padStart(2 * modulusBytes(key), '0');
}

export function verifyHex(cert: X509Certificate, text: string, signatureHex: string): boolean {
  if (!/^[0-9a-fA-F]+$/.test(signatureHex) || signatureHex.length % 2 !== 0) return false;
  try {
    return verify('sha1', Buffer.from(text, 'utf8'), { key: cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(signatureHex, 'hex'));
  } catch {
    return false;
  }
}
