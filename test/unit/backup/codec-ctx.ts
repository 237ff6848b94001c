/** An archive context over fresh memory storage with one codec at its default level (and a key). */
import type { ArchiveContext } from '../../../src/archive/context.js';
import { getCodec, type CodecName } from '../../../src/codec/codec.js';
import type { EncryptionKey } from '../../../src/codec/encryption.js';
import { silentLogger } from '../../../src/common/log.js';
import { MemoryStorage } from '../../../src/storage/memory.js';

export function codecCtx(name: CodecName, encryption?: EncryptionKey): ArchiveContext {
  return {
    storage: new MemoryStorage(),
    compression: { name, level: getCodec(name).level },
    ...(encryption ? { encryption } : {}),
    log: silentLogger(),
  };
}
