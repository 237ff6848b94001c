/**
 * The records of a base backup, stored as plain JSON (readable without the encryption key, so
 * backup-list works anywhere) that carries the SHA-256 of its own canonical body: a record that was
 * altered or torn is an IntegrityError, never a smaller or different backup.
 *
 * backup.json (BackupRecord) is the completion record: written last, create-only, only after the
 * server ended BASE_BACKUP without error, every object was stored and verified, and every WAL
 * segment from the start to the end LSN is in the archive. started.json, heartbeat.json and
 * failed.json describe a backup-push that has not (yet) completed.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { ArchiveMismatchError, IntegrityError } from '../common/errors.js';
import type { BackupType } from './names.js';

export const BACKUP_FORMAT_VERSION = 1;

export interface StoredRef {
  /** Object key of a walvault object (kind 'backup'). */
  readonly key: string;
  /**
   * SHA-256 (hex) of the object's original bytes (before compression and encryption), or with
   * `digest: 'payload'` (packs of catalog format 3) of its compressed payload before encryption.
   */
  readonly sha256: string;
  /** Size of the original bytes. */
  readonly size: number;
  readonly digest?: 'payload';
}

export interface BackupTablespace {
  /** pg_tablespace oid: the name of the `pg_tblspc/<oid>` link. */
  readonly oid: number;
  /** Where the tablespace lived on the backed-up server (a restore may map it elsewhere). */
  readonly location: string;
  /** Raw bytes the backup holds for it. */
  readonly bytes: number;
}

export interface BackupRecord {
  readonly format: typeof BACKUP_FORMAT_VERSION;
  readonly name: string;
  readonly type: BackupType;
  /** The backup this one builds on (incremental), or null for a full backup. */
  readonly parent: string | null;
  readonly label: string;
  /** PostgreSQL system identifier (decimal), server_version_num and WAL segment size. */
  readonly systemId: string;
  readonly pgVersionNum: number;
  readonly walSegSize: number;
  /** LSNs as PostgreSQL prints them (`X/X`), with their timelines. */
  readonly startLsn: string;
  readonly startTimeline: number;
  readonly endLsn: string;
  readonly endTimeline: number;
  readonly checkpointLsn: string | null;
  /** ISO 8601 UTC: when backup-push asked for the backup and when the server finished it. */
  readonly startTime: string;
  readonly stopTime: string;
  /** First and last WAL segment (file names) the backup needs to become consistent; both archived. */
  readonly walFirst: string;
  readonly walLast: string;
  readonly tablespaces: readonly BackupTablespace[];
  /** Entries in the catalog (files, directories, links) and regular files among them. */
  readonly entries: number;
  readonly files: number;
  /** Bytes of file content, and bytes stored for the whole backup (packs, catalog, manifest). */
  readonly rawBytes: number;
  readonly storedBytes: number;
  readonly packs: number;
  /**
   * Incremental backups (catalog format 2): bytes of file content stored by reference to earlier
   * backups' packs instead of again, and those backups (all of them are in the parent chain).
   * Absent in a full backup.
   */
  readonly reusedBytes?: number;
  readonly depends?: readonly string[];
  readonly catalog: StoredRef;
  /** PostgreSQL's backup_manifest, or null when the server sent none. */
  readonly manifest: StoredRef | null;
  /** `backup_label` exactly as the server synthesised it (also restored as a file). */
  readonly backupLabel: string;
  readonly compression: string;
  readonly encryptionKeyId: string | null;
  readonly writer: string;
  readonly host: string;
}

/** started.json: the name is taken; by whom and when. */
export interface StartedRecord {
  readonly format: typeof BACKUP_FORMAT_VERSION;
  readonly name: string;
  readonly type: BackupType;
  readonly parent: string | null;
  readonly label: string;
  readonly startTime: string;
  readonly host: string;
  readonly pid: number;
  readonly writer: string;
}

/** heartbeat.json: rewritten every `HEARTBEAT_INTERVAL_MS` while backup-push is alive. */
export interface HeartbeatRecord {
  readonly format: typeof BACKUP_FORMAT_VERSION;
  readonly name: string;
  readonly at: string;
  readonly doneBytes: number;
  readonly totalBytes: number | null;
  readonly phase: 'checkpoint' | 'copy' | 'wal-wait' | 'finish';
}

/** failed.json: why a backup-push gave up (best effort: a kill -9 leaves none). */
export interface FailedRecord {
  readonly format: typeof BACKUP_FORMAT_VERSION;
  readonly name: string;
  readonly at: string;
  readonly error: string;
  readonly code: string;
}

export const HEARTBEAT_INTERVAL_MS = 30_000;
/** No heartbeat for this long: the backup-push is gone and its objects are leftovers. */
export const ABANDONED_AFTER_MS = 5 * 60_000;

export type AnyRecord = BackupRecord | StartedRecord | HeartbeatRecord | FailedRecord;

interface Envelope<T> {
  readonly record: T;
  readonly sha256: string;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Canonical body: keys sorted at every level, so the checksum does not depend on field order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function encodeRecord(record: AnyRecord): Buffer {
  const envelope: Envelope<AnyRecord> = { record, sha256: sha256(canonical(record)) };
  return Buffer.from(`${JSON.stringify(envelope, null, 2)}\n`, 'utf8');
}

/**
 * Parses and checks a record's envelope (JSON, checksum, format version, name). Field-level checks
 * of a BackupRecord are in `decodeBackupRecord`; the other records are informational.
 */
export function decodeRecord<T extends AnyRecord>(bytes: Buffer, key: string, expectedName: string): T {
  const fail = (reason: string): never => {
    throw new IntegrityError(`unable to read backup record '${key}': ${reason}`);
  };
  let envelope: Envelope<T>;
  try {
    envelope = JSON.parse(bytes.toString('utf8')) as Envelope<T>;
  } catch {
    return fail('not valid JSON');
  }
  const record = envelope?.record;
  if (!record || typeof record !== 'object') return fail('no record field');
  if (typeof envelope.sha256 !== 'string' || envelope.sha256 !== sha256(canonical(record))) {
    fail('checksum mismatch (the record was altered or damaged)');
  }
  if (typeof record.format !== 'number') fail('no format version');
  if (record.format > BACKUP_FORMAT_VERSION) {
    throw new ArchiveMismatchError(
      `unable to use backup record '${key}': format version ${record.format} is newer than this walvault supports (${BACKUP_FORMAT_VERSION}); upgrade walvault`,
    );
  }
  if (record.name !== expectedName) fail(`it names backup '${String(record.name)}'`);
  return record;
}

const LSN_RE = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/;
const SEGMENT_RE = /^[0-9A-F]{24}$/;
const SHA_RE = /^[0-9a-f]{64}$/;

export function decodeBackupRecord(bytes: Buffer, key: string, expectedName: string): BackupRecord {
  const r = decodeRecord<BackupRecord>(bytes, key, expectedName);
  const fail = (field: string): never => {
    throw new IntegrityError(`unable to read backup record '${key}': field '${field}' is missing or invalid`);
  };
  const nat = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const ref = (v: StoredRef | null | undefined): boolean => !!v && typeof v.key === 'string' && SHA_RE.test(v.sha256) && nat(v.size);
  if (r.type !== 'full' && r.type !== 'incremental') fail('type');
  if (r.type === 'incremental' ? typeof r.parent !== 'string' : r.parent !== null) fail('parent');
  if (typeof r.systemId !== 'string' || !/^\d+$/.test(r.systemId)) fail('systemId');
  for (const f of [
    'pgVersionNum',
    'walSegSize',
    'startTimeline',
    'endTimeline',
    'entries',
    'files',
    'rawBytes',
    'storedBytes',
    'packs',
  ] as const) {
    if (!nat(r[f])) fail(f);
  }
  if (!LSN_RE.test(r.startLsn)) fail('startLsn');
  if (!LSN_RE.test(r.endLsn)) fail('endLsn');
  if (r.checkpointLsn !== null && !LSN_RE.test(String(r.checkpointLsn))) fail('checkpointLsn');
  if (!SEGMENT_RE.test(r.walFirst)) fail('walFirst');
  if (!SEGMENT_RE.test(r.walLast)) fail('walLast');
  if (Number.isNaN(Date.parse(r.startTime))) fail('startTime');
  if (Number.isNaN(Date.parse(r.stopTime))) fail('stopTime');
  if (!Array.isArray(r.tablespaces)) fail('tablespaces');
  for (const t of r.tablespaces) if (!nat(t.oid) || typeof t.location !== 'string' || !nat(t.bytes)) fail('tablespaces');
  if (r.reusedBytes !== undefined && !nat(r.reusedBytes)) fail('reusedBytes');
  if (r.depends !== undefined && (!Array.isArray(r.depends) || r.depends.some((d) => typeof d !== 'string' || d === r.name)))
    fail('depends');
  if (r.type === 'full' && (r.depends?.length ?? 0) > 0) fail('depends');
  if (!ref(r.catalog)) fail('catalog');
  if (r.manifest !== null && !ref(r.manifest)) fail('manifest');
  if (typeof r.backupLabel !== 'string') fail('backupLabel');
  if (typeof r.compression !== 'string') fail('compression');
  return r;
}

export function newStartedRecord(init: Omit<StartedRecord, 'format' | 'host' | 'pid'>): StartedRecord {
  return { format: BACKUP_FORMAT_VERSION, ...init, host: hostname(), pid: process.pid };
}
