import type { Logger } from '../common/log.js';
import { VERSION } from '../common/version.js';
import type { CompressionSpec } from '../codec/codec.js';
import type { EncryptionKey } from '../codec/encryption.js';
import type { Storage } from '../storage/types.js';
import type { ArchiveIdentity } from './identity.js';

/** Everything archive operations need, passed explicitly (no singletons). */
export interface ArchiveContext {
  readonly storage: Storage;
  /** Codec and level for new objects; reading always uses what the object records. */
  readonly compression: CompressionSpec;
  /** Encrypts new objects when set, and decrypts objects written with it. */
  readonly encryption?: EncryptionKey;
  readonly log: Logger;
  readonly signal?: AbortSignal;
  /** Identity, once read or created in this process (a long-running agent reads it once). */
  identity?: ArchiveIdentity | undefined;
}

/** Recorded in every object header and the identity record: which walvault wrote it. */
export const WRITER = `walvault ${VERSION}`;
