export {
  CODEC_NAMES,
  codecFromExtension,
  codecLevels,
  formatCompression,
  getCodec,
  isCodecName,
  parseCompression,
  type Codec,
  type CodecExtension,
  type CodecName,
  type CompressionSpec,
} from './codec.js';
export { createHashTap, sha256Hex, HashTap, type HashTapResult } from './checksum.js';
export {
  DEFAULT_CHUNK_SIZE,
  EncryptionKey,
  createDecryptStream,
  createEncryptStream,
  decrypt,
  encrypt,
  encryptedSize,
  encryptionKeyId,
  loadEncryptionKey,
  type DecryptOptions,
  type EncryptOptions,
  type KeySource,
} from './encryption.js';
