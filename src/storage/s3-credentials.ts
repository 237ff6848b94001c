/**
 * S3 credentials from the config file: an access key id and a file holding the secret, whose mode
 * is checked like the encryption key file's. The secret lives only inside a provider closure, so no
 * options object, log record, `config show` or error message can carry it.
 */
import { ConfigError } from '../common/errors.js';
import { readSecretFile, type KeyFileAccess } from '../common/secret-file.js';
import type { S3Credentials } from './s3.js';

export interface S3CredentialSettings {
  accessKeyId?: string | undefined;
  secretAccessKeyFile?: string | undefined;
  secretAccessKeyFileAccess?: KeyFileAccess | undefined;
}

/** The SDK's credential provider form: a function it calls (and may call again) for the identity. */
export type S3CredentialProvider = () => Promise<S3Credentials>;

/** Undefined when neither setting is given (the standard AWS chain applies). */
export async function loadS3Credentials(settings: S3CredentialSettings): Promise<S3CredentialProvider | undefined> {
  const id = settings.accessKeyId?.trim() ?? '';
  const file = settings.secretAccessKeyFile ?? '';
  if (id === '' && file === '') return undefined;
  if (id === '' || file === '') {
    const missing = id === '' ? 's3-access-key-id' : 's3-secret-access-key-file';
    throw new ConfigError(
      `unable to use S3 credentials '${id === '' ? file : id}': ${missing} is not set; set both, or neither for the AWS chain`,
    );
  }
  const secret = await readSecretKey(file, settings.secretAccessKeyFileAccess ?? 'owner');
  const credentials: S3Credentials = { accessKeyId: id, secretAccessKey: secret };
  return async () => credentials;
}

async function readSecretKey(path: string, access: KeyFileAccess): Promise<string> {
  const bytes = await readSecretFile(path, {
    what: 'S3 secret access key file',
    access,
    accessSetting: 's3-secret-access-key-file-access',
  });
  const lines = bytes.toString('utf8').split(/\r?\n/);
  const secret = lines[0]!.trim();
  // Say what is wrong without quoting any of it.
  if (secret === '') throw new ConfigError(`unable to use S3 secret access key file '${path}': its first line is empty`);
  if (lines.slice(1).some((l) => l.trim() !== '')) {
    throw new ConfigError(`unable to use S3 secret access key file '${path}': it must hold only the secret, on one line`);
  }
  if (!/^[\x21-\x7e]+$/.test(secret)) {
    throw new ConfigError(`unable to use S3 secret access key file '${path}': the secret holds spaces or non-printable characters`);
  }
  return secret;
}
