/**
 * Where each tablespace of a backup goes on restore: `--tablespace-map OID=DIR`, else the location
 * it had on the backed-up server. `pg_tblspc/<oid>` becomes a link to it; when the backup carries a
 * `tablespace_map` file (BASE_BACKUP with TABLESPACE_MAP sends that instead of the links), it is
 * rewritten with the same locations, because PostgreSQL recreates the links from it at start-up
 * and would otherwise point them back at the old places (wal-e#354).
 */
import { isAbsolute, normalize } from 'node:path';
import { UsageError } from '../../common/errors.js';
import type { CatalogEntry } from '../catalog.js';
import type { BackupRecord } from '../record.js';

export function parseTablespaceMap(items: readonly string[]): Map<number, string> {
  const map = new Map<number, string>();
  for (const item of items) {
    const m = /^(\d+)=(.+)$/.exec(item);
    if (!m || !isAbsolute(m[2]!)) {
      throw new UsageError(`unable to use tablespace mapping '${item}': expected OID=/absolute/directory`);
    }
    const oid = Number(m[1]);
    if (map.has(oid)) throw new UsageError(`unable to use tablespace mapping '${item}': tablespace ${oid} is mapped twice`);
    map.set(oid, normalize(m[2]!).replace(/\/+$/, '') || '/');
  }
  return map;
}

export interface TablespacePlan {
  readonly oid: number;
  /** Where it lived on the backed-up server. */
  readonly original: string;
  /** Where it is restored. */
  readonly location: string;
}

/** Every tablespace of the backup (record, links and entries) with its restore location. */
export function planTablespaces(
  record: BackupRecord,
  entries: readonly CatalogEntry[],
  map: ReadonlyMap<number, string>,
): TablespacePlan[] {
  const original = new Map<number, string>();
  for (const t of record.tablespaces) original.set(t.oid, t.location);
  for (const e of entries) {
    const m = e.type === 'link' && e.tablespace === null ? /^pg_tblspc\/(\d+)$/.exec(e.path) : null;
    if (m && !original.has(Number(m[1]))) original.set(Number(m[1]), e.target!);
  }
  for (const e of entries) {
    if (e.tablespace !== null && !original.has(e.tablespace)) {
      throw new UsageError(
        `unable to restore backup '${record.name}': tablespace ${e.tablespace} has files but no recorded location; give --tablespace-map ${e.tablespace}=DIR`,
      );
    }
  }
  for (const oid of map.keys()) {
    if (!original.has(oid)) {
      const known = [...original.keys()].join(', ') || 'none';
      throw new UsageError(
        `unable to use tablespace mapping for ${oid}: backup '${record.name}' has no such tablespace (it has: ${known})`,
      );
    }
  }
  const plans: TablespacePlan[] = [];
  for (const [oid, loc] of [...original].sort(([a], [b]) => a - b)) {
    const location = map.get(oid) ?? loc;
    if (!isAbsolute(location)) {
      throw new UsageError(
        `unable to restore tablespace ${oid}: its location '${location}' is not absolute; give --tablespace-map ${oid}=DIR`,
      );
    }
    plans.push({ oid, original: loc, location });
  }
  const seen = new Map<string, number>();
  for (const p of plans) {
    const other = seen.get(p.location);
    if (other !== undefined) throw new UsageError(`unable to restore tablespaces ${other} and ${p.oid}: both would go to '${p.location}'`);
    seen.set(p.location, p.oid);
  }
  return plans;
}

/**
 * tablespace_map content for the restored locations: `<oid> <path>` lines, the path with
 * backslash, CR and LF escaped by a backslash as PostgreSQL writes and reads it.
 */
export function tablespaceMapText(plans: readonly TablespacePlan[]): string {
  return plans.map((p) => `${p.oid} ${p.location.replace(/[\\\r\n]/g, (c) => `\\${c}`)}\n`).join('');
}

export const isTablespaceLink = (e: Pick<CatalogEntry, 'type' | 'tablespace' | 'path'>): boolean =>
  e.type === 'link' && e.tablespace === null && /^pg_tblspc\/\d+$/.test(e.path);
