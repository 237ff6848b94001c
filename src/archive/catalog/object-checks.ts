/**
 * What an object's header must agree with: its key, and the archive's identity. Pure; the header
 * comes from a ranged read (wal-verify) or a full download (wal-verify --deep).
 */
import type { CatalogEntry } from './listing.js';
import type { ArchiveIdentity } from '../identity.js';
import type { ObjectMeta } from '../object-header.js';
import { codecFromExtension } from '../../codec/codec.js';
import { codecExtensionOf } from '../versions.js';
import { quoteExcerpt } from '../../common/quote.js';
import { formatLsn } from '../../segment/lsn.js';
import { segmentStartLsn } from '../../segment/names.js';
import { errorText } from '../../common/format.js';

export type ObjectProblemKind = 'wrong-cluster' | 'header' | 'damaged';

export interface ObjectProblem {
  readonly kind: ObjectProblemKind;
  readonly message: string;
}

type EntryFacts = Pick<CatalogEntry, 'fileName' | 'kind' | 'timeline' | 'segno' | 'sha256' | 'extension' | 'encrypted' | 'storedBytes'>;

/**
 * `payloadOffset` (where the header ends) lets the listed object size prove the payload length the
 * header recorded, which finds a truncated or extended object without downloading it.
 */
export function checkObjectMeta(entry: EntryFacts, meta: ObjectMeta, identity: ArchiveIdentity, payloadOffset?: number): ObjectProblem[] {
  const out: ObjectProblem[] = [];
  const header = (message: string): void => void out.push({ kind: 'header', message });
  if (meta.name !== entry.fileName) header(`the header names ${quoteExcerpt(meta.name)}`);
  if (meta.kind !== entry.kind) header(`the header says it is a ${meta.kind}, the name says ${entry.kind}`);
  if (meta.sha256 !== entry.sha256) header('the checksum in the header differs from the one in the key');
  if ((meta.encryption !== null) !== entry.encrypted) header('the encryption flag in the header differs from the key');
  try {
    const codec = codecFromExtension(codecExtensionOf(entry.extension), entry.fileName);
    if (codec.name !== meta.codec) header(`the header says codec ${quoteExcerpt(meta.codec)}, the key says '${codec.name}'`);
  } catch (err) {
    header(errorText(err));
  }
  if (payloadOffset !== undefined && entry.storedBytes - payloadOffset !== meta.payloadBytes) {
    out.push({
      kind: 'damaged',
      message: `the object is ${entry.storedBytes} bytes, its header says ${payloadOffset + meta.payloadBytes} (truncated or extended)`,
    });
  }
  if (meta.systemId !== null && meta.systemId !== identity.systemId) {
    out.push({
      kind: 'wrong-cluster',
      message: `it is from database system ${meta.systemId}, the archive belongs to ${identity.systemId}`,
    });
  }
  if (entry.kind === 'segment' || entry.kind === 'partial') {
    if (meta.systemId === null) header('the header records no database system, so nothing proves the WAL belongs to this cluster');
    if (meta.size !== identity.walSegSize) header(`it is ${meta.size} bytes, the archive's segments are ${identity.walSegSize}`);
    if (meta.timeline !== entry.timeline) header(`the header says timeline ${String(meta.timeline)}, the name says ${entry.timeline}`);
    if (entry.segno !== undefined) {
      const start = formatLsn(segmentStartLsn(entry.segno, identity.walSegSize));
      if (meta.startLsn !== start) header(`the header says it starts at ${String(meta.startLsn)}, the name says ${start}`);
    }
  }
  return out;
}
