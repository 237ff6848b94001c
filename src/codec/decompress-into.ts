/**
 * Decompression into a caller's buffer, for readers that decode many objects of a bounded size one
 * after another (the restore writer's 8 MiB packs): one buffer reused instead of a fresh allocation
 * per object, which costs page faults, zeroing in the kernel and GC pressure on external memory.
 */
import type { Codec } from './codec.js';
import { decompressZstdInto } from './zstd.js';

/**
 * Decodes `input` with `codec` into `out` and returns the decoded length; more than out.length
 * bytes is an IntegrityError (the codec's output limit). zstd and none decode in place; the other
 * codecs decode as decompress() does and are copied in.
 */
export async function decompressInto(codec: Codec, input: Buffer, out: Buffer, objectName?: string): Promise<number> {
  if (codec.name === 'zstd') return decompressZstdInto(input, out, objectName);
  if (codec.name === 'none') {
    // decompress() enforces the limit with the codec's own message.
    if (input.length > out.length) await codec.decompress(input, out.length, objectName);
    return input.copy(out);
  }
  const whole = await codec.decompress(input, out.length, objectName);
  return whole.copy(out);
}
