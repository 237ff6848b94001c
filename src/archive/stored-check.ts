/**
 * Is an object that already exists under a WAL name whole? A push that finds its own content in
 * the archive answers "already archived", and PostgreSQL then recycles its copy: that answer must
 * not rest on an object an interrupted upload or a damaged disk left short. Checked from the header
 * alone (a few KB): the header decodes, names this file and checksum, and the object is exactly as
 * long as the header and the payload length it records. Only damage to what the header covers is
 * left to `wal-verify --deep`.
 */
import { ExitCode, NotFoundError, WalvaultError, describeCause } from '../common/errors.js';
import type { Storage } from '../storage/types.js';
import { readObjectHeader } from './header-read.js';

export type StoredCheck = { readonly state: 'whole' } | { readonly state: 'damaged'; readonly reason: string } | { readonly state: 'gone' };

export async function checkStoredObject(
  storage: Storage,
  key: string,
  expect: { readonly name: string; readonly sha256: string },
  signal?: AbortSignal,
): Promise<StoredCheck> {
  const info = await storage.head(key);
  if (!info) return { state: 'gone' };
  let header;
  try {
    header = await readObjectHeader(storage, key, signal);
  } catch (err) {
    if (err instanceof NotFoundError) return { state: 'gone' };
    // Not our object, or one that ends inside its header: damage, not an outage.
    if (err instanceof WalvaultError && err.exitCode === ExitCode.integrity) return { state: 'damaged', reason: describeCause(err) };
    throw err;
  }
  const { meta, payloadOffset } = header;
  if (meta.name !== expect.name) return { state: 'damaged', reason: `its header names '${meta.name}'` };
  if (meta.sha256 !== expect.sha256) return { state: 'damaged', reason: 'the checksum in its header differs from the one in its key' };
  const expected = payloadOffset + meta.payloadBytes;
  if (info.size !== expected) {
    return { state: 'damaged', reason: `it is ${info.size} bytes, its header says ${expected} (truncated or extended)` };
  }
  return { state: 'whole' };
}
