/**
 * The archive's use of encryption: the object header is bound to every encrypted chunk as
 * associated data, so a header edited to claim another name, checksum or codec fails authentication.
 */
import { CryptoError } from '../common/errors.js';
import { decrypt, type EncryptionKey } from '../codec/encryption.js';

export function decryptBuffer(
  payload: Buffer,
  key: EncryptionKey | undefined,
  objectKeyId: string,
  objectHeader: Buffer,
  objectName: string,
): Buffer {
  if (!key) {
    throw new CryptoError(
      `unable to decrypt object '${objectName}': it is encrypted (key id ${objectKeyId}) and no encryption key is configured`,
    );
  }
  return decrypt(payload, key, { aad: objectHeader, objectName });
}
