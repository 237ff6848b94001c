import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigError, CryptoError } from '../common/errors.js';
import { readSecretFile, type KeyFileAccess } from '../common/secret-file.js';

export const KEY_BYTES = 32;
const KEY_ID_LABEL = Buffer.from('walvault-key-id', 'ascii');
/** Exactly 32 bytes in standard base64: 43 symbols, the last carrying 4 padding bits, then '='. */
const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$/;

/**
 * An AES-256 key and its public id. The key bytes are kept out of JSON, util.inspect and
 * enumeration, so logging or dumping a config object that holds one cannot print them.
 */
export class EncryptionKey {
  readonly #key: Buffer;
  /** 16 hex digits that identify the key without revealing it; stored in each object header. */
  readonly keyId: string;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) {
      throw new CryptoError(`unable to use encryption key: it is ${key.length} bytes long, AES-256 needs ${KEY_BYTES}`);
    }
    this.#key = Buffer.from(key);
    this.keyId = encryptionKeyId(this.#key);
  }

  get key(): Buffer {
    return this.#key;
  }

  toJSON(): { keyId: string } {
    return { keyId: this.keyId };
  }

  [inspect.custom](): string {
    return `EncryptionKey { keyId: '${this.keyId}' }`;
  }
}

/** First 8 bytes of SHA-256("walvault-key-id" || key), in hex. */
export function encryptionKeyId(key: Buffer): string {
  return createHash('sha256').update(KEY_ID_LABEL).update(key).digest().subarray(0, 8).toString('hex');
}

export interface KeySource {
  /** Base64 text of the 32 key bytes, e.g. from WALVAULT_ENCRYPTION_KEY. */
  keyBase64?: string | undefined;
  /** A file holding the 32 raw key bytes, or their base64 text with an optional trailing newline. */
  keyFile?: string | undefined;
  /** Who besides the owner may have access to the key file (default `owner`: nobody). */
  keyFileAccess?: KeyFileAccess | undefined;
}

export type { KeyFileAccess };

/**
 * Reads the key from exactly one source. Error messages name the source and describe what is
 * wrong (length, alphabet) but never include any of the key material.
 */
export async function loadEncryptionKey(source: KeySource): Promise<EncryptionKey> {
  const hasText = source.keyBase64 !== undefined && source.keyBase64 !== '';
  const hasFile = source.keyFile !== undefined && source.keyFile !== '';
  if (hasText && hasFile) {
    throw new ConfigError("unable to load encryption key 'WALVAULT_ENCRYPTION_KEY': a key file is configured as well; configure only one");
  }
  if (hasText) return new EncryptionKey(decodeEnvKey(source.keyBase64 as string));
  if (hasFile) return new EncryptionKey(await readKeyFile(source.keyFile as string, source.keyFileAccess ?? 'owner'));
  throw new ConfigError("unable to load encryption key '(none)': neither WALVAULT_ENCRYPTION_KEY nor a key file is configured");
}

async function readKeyFile(path: string, access: KeyFileAccess): Promise<Buffer> {
  const bytes = await readSecretFile(path, {
    what: 'encryption key file',
    access,
    accessSetting: 'encryption-key-file-access',
    risk: 'whoever can read it can decrypt the whole archive',
  });
  if (bytes.length === KEY_BYTES) return bytes;
  let text = bytes.toString('latin1');
  if (text.endsWith('\r\n')) text = text.slice(0, -2);
  else if (text.endsWith('\n')) text = text.slice(0, -1);
  const key = decodeBase64Key(text);
  if (typeof key === 'string') {
    throw new ConfigError(
      `unable to load encryption key file '${path}': it must hold ${KEY_BYTES} raw bytes or their base64 ` +
        `encoding (44 characters), but holds ${bytes.length} bytes that are neither (${key})`,
    );
  }
  return key;
}

function decodeEnvKey(text: string): Buffer {
  const key = decodeBase64Key(text.trim());
  if (typeof key === 'string') {
    throw new ConfigError(
      `unable to load encryption key 'WALVAULT_ENCRYPTION_KEY': it must be the base64 encoding of ${KEY_BYTES} bytes (${key})`,
    );
  }
  return key;
}

/** The key, or why the text is not a base64-encoded 32-byte key (without quoting the text). */
function decodeBase64Key(text: string): Buffer | string {
  if (BASE64_KEY.test(text)) return Buffer.from(text, 'base64');
  if (/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return `${text.length} base64 characters, a ${KEY_BYTES}-byte key has 44`;
  return 'it contains characters outside the base64 alphabet';
}
