import { createDecipheriv, type KeyObject } from 'node:crypto';
import { ToolError } from '../errors.js';
import { decryptPkcs1v15 } from './keys.js';

/**
 * The original's "AMI Manifest Encryption Scheme" (versions 1 and 2), used by old uploaders for the manifest object:
 *   v1: 0x01, len (1 byte), RSA-PKCS#1 v1.5(key ‖ iv) of len bytes, AES-128-CBC(manifest)
 *   v2: 0x02, len (2 bytes, big-endian), RSA-PKCS#1 v1.5(key ‖ iv) of len bytes, AES-128-CBC(manifest)
 * where key and iv are 16 raw bytes each.
 */
export function isLegacyEncryptedManifest(data: Buffer): boolean {
  return !/^\s*<\?/.test(data.subarray(0, 64).toString('latin1'));
}

export function decryptLegacyManifest(data: Buffer, key: KeyObject, source: string): string {
  const version = data[0];
  let headerLength: number;
  let keyLength: number;
  if (version === 1 && data.length > 2) { keyLength = data[1]; headerLength = 2; }
  else if (version === 2 && data.length > 3) { keyLength = data.readUInt16BE(1); headerLength = 3; }
  else throw new ToolError(`manifest ${source} is neither XML nor a known encrypted manifest (version byte ${version ?? 'missing'})`);
  if (data.length < headerLength + keyLength + 16) throw new ToolError(`encrypted manifest ${source} is truncated`);
  const keyIv = decryptPkcs1v15(key, data.subarray(headerLength, headerLength + keyLength));
  if (!keyIv) throw new ToolError(`cannot decrypt manifest ${source} with the private key given by -k/--privatekey: it is not the key the manifest was encrypted for`);
  if (keyIv.length < 32) throw new ToolError(`encrypted manifest ${source} holds a ${keyIv.length}-byte key and IV; 32 bytes were expected`);
  try {
    const decipher = createDecipheriv('aes-128-cbc', keyIv.subarray(0, 16), keyIv.subarray(16, 32));
    return Buffer.concat([decipher.update(data.subarray(headerLength + keyLength)), decipher.final()]).toString('utf8');
  } catch {
    throw new ToolError(`cannot decrypt manifest ${source}: the AES data is corrupt (bad padding)`);
  }
}
