import { ConfigError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { parseCompression } from '../codec/codec.js';
import { loadEncryptionKey, type EncryptionKey, type KeyFileAccess } from '../codec/encryption.js';
import type { Config } from '../config/load.js';
import { createStorage, parseModeSetting } from '../storage/factory.js';
import type { ArchiveContext } from './context.js';

/** Builds the archive context from settings: storage driver, codec for new objects, encryption key. */
export async function openArchive(config: Config, log: Logger, signal?: AbortSignal): Promise<ArchiveContext> {
  const url = config.archive;
  if (!url) {
    throw new ConfigError(
      'unable to open the archive: no archive configured (set --archive, WALVAULT_ARCHIVE or `archive = ...` in the config file)',
    );
  }
  const storage = await createStorage(
    url,
    {
      ...(config['s3-endpoint'] ? { endpoint: config['s3-endpoint'] } : {}),
      ...(config['s3-region'] ? { region: config['s3-region'] } : {}),
      forcePathStyle: config['s3-force-path-style'],
      checksums: config['s3-checksums'] as 'default' | 'when_required',
      ...(config['s3-storage-class'] ? { storageClass: config['s3-storage-class'] } : {}),
      sse: config['s3-sse'] as 'none' | 'AES256' | 'aws:kms',
      ...(config['s3-sse-kms-key-id'] ? { kmsKeyId: config['s3-sse-kms-key-id'] } : {}),
      maxAttempts: config['s3-max-attempts'],
      requestTimeoutMs: config['s3-request-timeout'],
      accessKeyId: config['s3-access-key-id'],
      secretAccessKeyFile: config['s3-secret-access-key-file'],
      secretAccessKeyFileAccess: config['s3-secret-access-key-file-access'] as KeyFileAccess,
      log: log.child({ component: 'storage.s3' }),
    },
    {
      fileMode: parseModeSetting('posix-file-mode', config['posix-file-mode']),
      dirMode: parseModeSetting('posix-dir-mode', config['posix-dir-mode']),
    },
  );
  let encryption: EncryptionKey | undefined;
  if (config['encryption-key'] !== undefined || config['encryption-key-file'] !== undefined) {
    encryption = await loadEncryptionKey({
      keyBase64: config['encryption-key'],
      keyFile: config['encryption-key-file'],
      keyFileAccess: config['encryption-key-file-access'] as KeyFileAccess,
    });
  }
  return {
    storage,
    compression: parseCompression(config.compression),
    ...(encryption ? { encryption } : {}),
    log,
    ...(signal ? { signal } : {}),
  };
}
