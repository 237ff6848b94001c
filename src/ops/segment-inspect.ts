/**
 * segment inspect: what one local WAL file holds. A file named like a segment (or a .partial) is
 * also checked against its name; `systemId` refuses a file of another database system.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { LocalIoError, describeCause } from '../common/errors.js';
import { inspectSegment, type SegmentInspection } from '../segment/inspect.js';
import { tryClassifyWalFileName } from '../segment/names.js';

export async function inspectSegmentFile(file: string, opts: { readonly systemId?: string } = {}): Promise<SegmentInspection> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new LocalIoError(`unable to read WAL file '${file}': ${describeCause(err)}`, { cause: err });
  }
  const name = basename(file);
  const classified = tryClassifyWalFileName(name);
  const named = classified?.kind === 'segment' || classified?.kind === 'partial';
  return inspectSegment(bytes, {
    ...(named ? { expectedName: name } : {}),
    ...(opts.systemId ? { expectedSystemId: opts.systemId } : {}),
  });
}
