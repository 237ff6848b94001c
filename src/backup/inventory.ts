/**
 * Every backup under `backups/` with its status, from one listing plus the small records:
 *
 *   complete  backup.json present and intact: restore and retention may use it
 *   running   no backup.json, and not abandoned by the rule of abandoned.ts
 *   failed    no backup.json, and abandoned (the reason from failed.json when any)
 *   damaged   backup.json present but not decodable (altered, torn, or a newer format)
 *
 * Abandoned is decided by abandoned.ts, the same rule backup-push uses for its leftovers (heartbeat,
 * else started record, else the newest object's mtime). Ordering is by stop LSN, then
 * stop time, never by name (wal-g#636 deleted the newest backups when names sorted wrong).
 *
 * `classifyBackup` and `compareBackups` are pure; `loadBackupInventory` does the I/O.
 */
import PQueue from 'p-queue';
import type { ArchiveContext } from '../archive/context.js';
import { ExitCode, NotFoundError, WalvaultError } from '../common/errors.js';
import { errorText } from '../common/format.js';
import { parseLsn } from '../segment/lsn.js';
import type { ObjectInfo } from '../storage/types.js';
import { isAbandoned } from './abandoned.js';
import { BACKUPS_PREFIX, FAILED_LEAF, HEARTBEAT_LEAF, RECORD_LEAF, STARTED_LEAF, backupPrefix, parseBackupKey } from './layout.js';
import {
  decodeBackupRecord,
  decodeRecord,
  type BackupRecord,
  type FailedRecord,
  type HeartbeatRecord,
  type StartedRecord,
} from './record.js';

/** An operator named a backup the archive does not hold (exit 1: definitely not in the archive). */
export class UnknownBackupError extends NotFoundError {}

export type BackupStatus = 'complete' | 'running' | 'failed' | 'damaged';

export interface BackupEntry {
  readonly name: string;
  readonly status: BackupStatus;
  /** The completion record (complete backups only). */
  readonly record: BackupRecord | null;
  readonly started: StartedRecord | null;
  readonly failure: FailedRecord | null;
  /** Why a damaged backup is damaged, or why a failed one failed (failed.json, else "abandoned"). */
  readonly reason: string | null;
  /** Every object under `backups/<name>/`, in key order. */
  readonly objects: readonly ObjectInfo[];
  readonly storedBytes: number;
  /** The newest object's mtime. */
  readonly lastActivity: Date;
  /** Not complete and abandoned (abandoned.ts): its objects are leftovers to delete. */
  readonly abandoned: boolean;
  /** Records other than backup.json that could not be read (informational). */
  readonly notes: readonly string[];
}

/** What was read of a backup's records: the decoded value or the error text. */
export type Read<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export interface BackupRecords {
  readonly backup?: Read<BackupRecord>;
  readonly started?: Read<StartedRecord>;
  readonly heartbeat?: Read<HeartbeatRecord>;
  readonly failed?: Read<FailedRecord>;
}

/** Groups a listing of `backups/` by backup name; keys that are not a backup's are ignored. */
export function groupBackupListing(objects: Iterable<ObjectInfo>): Map<string, ObjectInfo[]> {
  const out = new Map<string, ObjectInfo[]>();
  for (const o of objects) {
    const parsed = parseBackupKey(o.key);
    if (!parsed || parsed.leaf === '') continue;
    const list = out.get(parsed.name) ?? [];
    list.push(o);
    out.set(parsed.name, list);
  }
  for (const list of out.values()) list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

export function classifyBackup(
  name: string,
  objects: readonly ObjectInfo[],
  records: BackupRecords,
  now: Date,
  abandonedAfterMs?: number,
): BackupEntry {
  const lastActivity = new Date(objects.reduce((m, o) => Math.max(m, o.mtime.getTime()), 0));
  const storedBytes = objects.reduce((n, o) => n + o.size, 0);
  const notes: string[] = [];
  const started = records.started?.ok ? records.started.value : null;
  if (records.started && !records.started.ok) notes.push(records.started.error);
  const failure = records.failed?.ok ? records.failed.value : null;
  if (records.failed && !records.failed.ok) notes.push(records.failed.error);
  const base = { name, started, failure, objects, storedBytes, lastActivity, notes };
  const hasRecord = objects.some((o) => parseBackupKey(o.key)?.leaf === RECORD_LEAF);
  if (records.backup?.ok) return { ...base, status: 'complete', record: records.backup.value, reason: null, abandoned: false };
  if (hasRecord || records.backup) {
    const reason =
      records.backup && !records.backup.ok
        ? records.backup.error
        : `backup record '${backupPrefix(name)}${RECORD_LEAF}' is listed but could not be read`;
    return { ...base, status: 'damaged', record: null, reason, abandoned: false };
  }
  const heartbeatAt = records.heartbeat?.ok ? records.heartbeat.value.at : undefined;
  const silent = isAbandoned({ heartbeatAt, startedAt: started?.startTime, newestMtimeMs: lastActivity.getTime() }, now, abandonedAfterMs);
  const status: BackupStatus = silent ? 'failed' : 'running';
  const reason = failure ? failure.error : silent ? `abandoned: nothing written since ${lastActivity.toISOString()}` : null;
  return { ...base, status, record: null, reason, abandoned: silent };
}

/** Complete backups in the order they end: stop LSN, then stop time (the name only breaks exact ties). */
export function compareRecords(a: BackupRecord, b: BackupRecord): number {
  const la = parseLsn(a.endLsn);
  const lb = parseLsn(b.endLsn);
  if (la !== lb) return la < lb ? -1 : 1;
  const ta = Date.parse(a.stopTime);
  const tb = Date.parse(b.stopTime);
  if (ta !== tb) return ta - tb;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Complete backups first in stop order, then the others by last activity. */
export function compareBackups(a: BackupEntry, b: BackupEntry): number {
  if (a.record && b.record) return compareRecords(a.record, b.record);
  if (a.record) return -1;
  if (b.record) return 1;
  const d = a.lastActivity.getTime() - b.lastActivity.getTime();
  return d !== 0 ? d : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export interface BackupInventory {
  /** Complete backups oldest first by stop LSN and time, then the others. */
  readonly backups: readonly BackupEntry[];
}

/** The complete backups of an inventory, oldest first. */
export function completeBackups(inv: BackupInventory): BackupRecord[] {
  return inv.backups.flatMap((b) => (b.record ? [b.record] : []));
}

/** The damaged backups of an inventory (backup.json present, not decodable), each with its reason. */
export function damagedRecords(inv: BackupInventory): Map<string, string> {
  return new Map(inv.backups.flatMap((b) => (b.status === 'damaged' ? [[b.name, b.reason ?? 'damaged'] as const] : [])));
}

/** An integrity-class failure reading a record is the record's damage; anything else (storage) is thrown. */
async function readRecord<T>(ctx: ArchiveContext, key: string, decode: (bytes: Buffer) => T): Promise<Read<T> | undefined> {
  let bytes: Buffer;
  try {
    bytes = await ctx.storage.getBuffer(key, ctx.signal ? { signal: ctx.signal } : {});
  } catch (err) {
    if (err instanceof NotFoundError) return undefined; // deleted since the listing
    throw err;
  }
  try {
    return { ok: true, value: decode(bytes) };
  } catch (err) {
    if (err instanceof WalvaultError && err.exitCode === ExitCode.integrity) return { ok: false, error: errorText(err) };
    throw err;
  }
}

const RECORD_READS = 8;

/** Lists `backups/` once and reads each backup's records (backup.json, or started.json and failed.json). */
export async function loadBackupInventory(
  ctx: ArchiveContext,
  opts: { now?: Date; only?: string; abandonedAfterMs?: number } = {},
): Promise<BackupInventory> {
  const now = opts.now ?? new Date();
  const listed: ObjectInfo[] = [];
  for await (const o of ctx.storage.list(opts.only !== undefined ? backupPrefix(opts.only) : BACKUPS_PREFIX)) listed.push(o);
  const groups = groupBackupListing(listed);
  const queue = new PQueue({ concurrency: RECORD_READS });
  const entries = await Promise.all(
    [...groups].map(([name, objects]) =>
      queue.add(async () => {
        const leaves = new Set(objects.map((o) => parseBackupKey(o.key)!.leaf));
        const prefix = backupPrefix(name);
        const records: { -readonly [K in keyof BackupRecords]: BackupRecords[K] } = {};
        if (leaves.has(RECORD_LEAF)) {
          const r = await readRecord(ctx, prefix + RECORD_LEAF, (b) => decodeBackupRecord(b, prefix + RECORD_LEAF, name));
          if (r) records.backup = r;
        }
        if (!records.backup?.ok) {
          // Only an unfinished backup needs its other records: the completion record has it all.
          if (leaves.has(STARTED_LEAF)) {
            const r = await readRecord(ctx, prefix + STARTED_LEAF, (b) => decodeRecord<StartedRecord>(b, prefix + STARTED_LEAF, name));
            if (r) records.started = r;
          }
          if (leaves.has(HEARTBEAT_LEAF)) {
            const r = await readRecord(ctx, prefix + HEARTBEAT_LEAF, (b) =>
              decodeRecord<HeartbeatRecord>(b, prefix + HEARTBEAT_LEAF, name),
            );
            if (r) records.heartbeat = r;
          }
          if (leaves.has(FAILED_LEAF)) {
            const r = await readRecord(ctx, prefix + FAILED_LEAF, (b) => decodeRecord<FailedRecord>(b, prefix + FAILED_LEAF, name));
            if (r) records.failed = r;
          }
        }
        return classifyBackup(name, objects, records, now, opts.abandonedAfterMs);
      }),
    ),
  );
  const backups = entries.filter((e): e is BackupEntry => e !== undefined).sort(compareBackups);
  return { backups };
}

/** One backup by name, or NotFoundError naming it. */
export async function loadBackup(ctx: ArchiveContext, name: string, opts: { now?: Date } = {}): Promise<BackupEntry> {
  const inv = await loadBackupInventory(ctx, { ...opts, only: name });
  const entry = inv.backups.find((b) => b.name === name);
  if (!entry) {
    throw new UnknownBackupError(
      `unable to find backup '${name}' in archive '${ctx.storage.description}': no such backup (see 'walvault backup-list')`,
    );
  }
  return entry;
}
