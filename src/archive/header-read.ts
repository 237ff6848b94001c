/**
 * Reads just the self-describing header of an archived object: the Storage interface has whole-object
 * streams only, so the stream is read until the header decodes and then destroyed, which releases
 * the socket or file at once. A few KB per object instead of the whole segment.
 */
import { IntegrityError } from '../common/errors.js';
import { decodeObjectHeader, type DecodedHeader } from './object-header.js';
import type { Storage } from '../storage/types.js';

export async function readObjectHeader(storage: Storage, key: string, signal?: AbortSignal): Promise<DecodedHeader> {
  const stream = await storage.get(key, signal ? { signal } : {});
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      const decoded = decodeObjectHeader(chunks.length === 1 ? chunk : Buffer.concat(chunks, length), key);
      if (decoded) return decoded;
    }
  } finally {
    stream.destroy();
  }
  throw new IntegrityError(`unable to read archived object '${key}': it ends inside its header (${length} bytes)`);
}
