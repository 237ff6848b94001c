/**
 * The stored versions of one WAL file name, found with one prefix listing; and the one mapping
 * between a codec's file extension (`''` for no compression) and the extension an object key
 * spells (`raw`). Push (the dedupe rule) and restore read the archive through these.
 */
import type { ArchiveContext } from './context.js';
import { lookupPrefix, parseObjectKey, type ObjectKeyParts } from './keys.js';

export interface StoredObject {
  readonly key: string;
  readonly parts: ObjectKeyParts;
  readonly storedBytes: number;
}

/** Every stored version of a file name (normally one; several only for `.partial`). */
export async function findVersions(ctx: Pick<ArchiveContext, 'storage'>, fileName: string): Promise<StoredObject[]> {
  const found: StoredObject[] = [];
  for await (const obj of ctx.storage.list(lookupPrefix(fileName))) {
    const parts = parseObjectKey(obj.key);
    if (parts && parts.fileName === fileName) found.push({ key: obj.key, parts, storedBytes: obj.size });
  }
  return found;
}

/** A key has no empty extension: uncompressed objects end in `.raw`. */
export function keyExtensionOf(codecExtension: string): string {
  return codecExtension || 'raw';
}

/** The codec extension an object key's extension stands for. */
export function codecExtensionOf(keyExtension: string): string {
  return keyExtension === 'raw' ? '' : keyExtension;
}
