/** backup.json from what the packer stored and what the server said (docs/storage-format.md). */
import { hostname } from 'node:os';
import type { ArchiveContext } from '../archive/context.js';
import { WRITER } from '../archive/context.js';
import { IntegrityError, NotFoundError, ObjectExistsError, StorageError } from '../common/errors.js';
import { recordKey } from './layout.js';
import { formatLsn, parseLsn, type Lsn } from '../segment/lsn.js';
import type { PackedBackup } from './packer.js';
import type { ServerIdentity } from './push-server.js';
import { BACKUP_FORMAT_VERSION, encodeRecord, type BackupRecord } from './record.js';

export interface RecordInput {
  readonly name: string;
  readonly label: string;
  readonly server: ServerIdentity;
  readonly packed: PackedBackup;
  readonly startTime: Date;
  readonly stopTime: Date;
  readonly ctx: ArchiveContext;
  readonly needed: readonly string[];
}

/** `CHECKPOINT LOCATION: 0/2000060` in backup_label; null when the label has none. */
export function checkpointOf(backupLabel: string): Lsn | null {
  const m = /^CHECKPOINT LOCATION: ([0-9A-Fa-f]+\/[0-9A-Fa-f]+)$/m.exec(backupLabel);
  return m ? parseLsn(m[1]!) : null;
}

export function buildRecord(r: RecordInput): BackupRecord {
  const { packed } = r;
  const checkpoint = checkpointOf(packed.backupLabel);
  return {
    format: BACKUP_FORMAT_VERSION,
    name: r.name,
    type: 'full',
    parent: null,
    label: r.label,
    systemId: r.server.systemId,
    pgVersionNum: r.server.pgVersionNum,
    walSegSize: r.server.walSegSize,
    startLsn: formatLsn(packed.start.startLsn),
    startTimeline: packed.start.startTimeline,
    endLsn: formatLsn(packed.end.endLsn),
    endTimeline: packed.end.endTimeline,
    checkpointLsn: checkpoint === null ? null : formatLsn(checkpoint),
    startTime: r.startTime.toISOString(),
    stopTime: r.stopTime.toISOString(),
    walFirst: r.needed[0]!,
    walLast: r.needed[r.needed.length - 1]!,
    tablespaces: packed.start.tablespaces
      .filter((t) => t.oid !== null)
      .map((t) => ({ oid: t.oid!, location: t.location ?? '', bytes: packed.tablespaceBytes.get(t.oid) ?? 0 })),
    entries: packed.entries,
    files: packed.files,
    rawBytes: packed.rawBytes,
    storedBytes: packed.storedBytes,
    packs: packed.packs,
    catalog: packed.catalog,
    manifest: packed.manifest,
    backupLabel: packed.backupLabel,
    compression: `${r.ctx.compression.name}:${r.ctx.compression.level}`,
    encryptionKeyId: r.ctx.encryption?.keyId ?? null,
    writer: WRITER,
    host: hostname(),
  };
}

/**
 * Writes backup.json create-only (never replacing one, not even a second run's that reused the
 * name), then reads it back: only the exact bytes written make the backup complete. A torn write
 * that the storage acknowledged, or a record someone else put there first, is an IntegrityError
 * and the push fails (its failed.json says why). A retried request that met its own first attempt
 * finds the same bytes and succeeds.
 */
export async function storeCompletionRecord(ctx: ArchiveContext, record: BackupRecord): Promise<void> {
  const key = recordKey(record.name);
  const bytes = encodeRecord(record);
  const signal = ctx.signal ? { signal: ctx.signal } : {};
  let existed = false;
  try {
    await ctx.storage.put(key, bytes, { ifAbsent: true, ...signal });
  } catch (err) {
    if (!(err instanceof ObjectExistsError)) throw err;
    existed = true;
  }
  let stored: Buffer;
  try {
    stored = await ctx.storage.getBuffer(key, signal);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new StorageError(`unable to verify backup record '${key}': not visible after upload`, { cause: err, retryable: true });
    }
    throw err;
  }
  if (!stored.equals(bytes)) {
    const why = existed ? 'another backup.json was already there' : 'the stored bytes differ from those written';
    throw new IntegrityError(
      `unable to verify backup record '${key}': ${why} (stored ${stored.length} bytes, wrote ${bytes.length}); the backup is not complete`,
    );
  }
}
