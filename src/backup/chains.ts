/**
 * Incremental chains over complete backups (pure): the parent links of a backup down to its full
 * backup, the backups its bytes live in (the chain plus every backup a catalog's extents read), and
 * the reverse, which backups need a given one. Restore, verify, list and retention all ask these
 * questions; one definition keeps them from disagreeing about what a backup needs.
 */
import { IntegrityError } from '../common/errors.js';
import type { BackupRecord } from './record.js';

/**
 * Why a backup of that name is not among the complete ones although it is in the archive: its
 * backup.json exists but does not decode (the inventory's `damaged`; the reason names the key).
 */
export type DamagedRecords = ReadonlyMap<string, string>;

/** The end of a message about a backup that is needed but not complete. */
export function notCompleteReason(name: string, damaged: DamagedRecords | undefined): string {
  const why = damaged?.get(name);
  // A damaged record is an integrity problem of the archive: name its key (the reason does), so the
  // operator looks at that object, not for a backup that was deleted.
  return why !== undefined ? `whose record is damaged: ${why}` : 'which is not a complete backup in the archive';
}

/** `record`, its parent, ..., down to the full backup: newest first. */
export function chainOf(record: BackupRecord, byName: ReadonlyMap<string, BackupRecord>, damaged?: DamagedRecords): BackupRecord[] {
  const chain = [record];
  const seen = new Set([record.name]);
  for (let r = record; r.parent !== null;) {
    const parent = byName.get(r.parent);
    if (!parent) {
      throw new IntegrityError(
        `unable to use backup '${record.name}': it builds on backup '${r.parent}'${r === record ? '' : ` (the parent of '${r.name}')`}, ${notCompleteReason(r.parent, damaged)}`,
      );
    }
    if (seen.has(parent.name))
      throw new IntegrityError(`unable to use backup '${record.name}': its chain of parents loops at '${parent.name}'`);
    if (parent.systemId !== record.systemId) {
      throw new IntegrityError(
        `unable to use backup '${record.name}': its parent '${parent.name}' is of another cluster (system identifier ${parent.systemId}, not ${record.systemId})`,
      );
    }
    seen.add(parent.name);
    chain.push(parent);
    r = parent;
  }
  return chain;
}

/**
 * Every backup a restore of `record` reads, by the records alone: its chain and what each member's
 * record says it `depends` on. (The catalogs' headers repeat `depends`; restore checks those too.)
 */
export function requiredBackups(record: BackupRecord, byName: ReadonlyMap<string, BackupRecord>): string[] {
  const out = new Set<string>();
  for (const r of chainOf(record, byName)) {
    out.add(r.name);
    for (const d of r.depends ?? []) out.add(d);
  }
  return [...out];
}

/**
 * Every backup name a restore of `record` reads, as far as the complete records lead: a name that
 * is not complete (damaged, unfinished, gone) is included and ends that branch. requiredBackups
 * throws on a broken chain instead; verification wants to look at the backup that breaks it.
 */
export function reachableNeeds(record: BackupRecord, byName: ReadonlyMap<string, BackupRecord>): string[] {
  const out = new Set([record.name]);
  const todo = [record];
  for (let r = todo.pop(); r !== undefined; r = todo.pop()) {
    for (const n of directNeeds(r)) {
      if (out.has(n)) continue;
      out.add(n);
      const next = byName.get(n);
      if (next) todo.push(next);
    }
  }
  return [...out];
}

/** What each backup needs directly: its parent and the backups its record depends on. */
export function directNeeds(record: BackupRecord): string[] {
  return [...new Set([...(record.parent !== null ? [record.parent] : []), ...(record.depends ?? [])])];
}

/**
 * The backups that need `name`, directly or through others (their parent or a depends entry leads
 * to it), in `records` order.
 */
export function dependentsOf(name: string, records: readonly BackupRecord[]): BackupRecord[] {
  const needed = new Set([name]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of records) {
      if (needed.has(r.name)) continue;
      if (directNeeds(r).some((n) => needed.has(n))) {
        needed.add(r.name);
        grew = true;
      }
    }
  }
  return records.filter((r) => r.name !== name && needed.has(r.name));
}

/** A backup's place in its chain, as backup-list and backup-show report it. */
export interface ChainSummary {
  readonly parent: string | null;
  /** Parent links to the full backup (0 for a full one); null when the chain is broken. */
  readonly depth: number | null;
  /** Bytes this backup stores itself (record.storedBytes). */
  readonly ownBytes: number;
  /** Bytes stored by every backup a restore of it reads (its own included); null when broken. */
  readonly totalBytes: number | null;
  /** Content bytes it references in earlier backups instead of storing them again. */
  readonly reusedBytes: number;
  /** Why it cannot be restored (a parent or referenced backup is not complete), or null. */
  readonly broken: string | null;
}

export function chainSummary(record: BackupRecord, byName: ReadonlyMap<string, BackupRecord>): ChainSummary {
  const base = { parent: record.parent, ownBytes: record.storedBytes, reusedBytes: record.reusedBytes ?? 0 };
  try {
    const names = requiredBackups(record, byName);
    const missing = names.filter((n) => !byName.has(n));
    if (missing.length > 0)
      return { ...base, depth: null, totalBytes: null, broken: `references backup ${missing.join(', ')}, which is not complete` };
    const totalBytes = names.reduce((n, name) => n + byName.get(name)!.storedBytes, 0);
    return { ...base, depth: chainOf(record, byName).length - 1, totalBytes, broken: null };
  } catch (err) {
    return { ...base, depth: null, totalBytes: null, broken: err instanceof Error ? err.message : String(err) };
  }
}
