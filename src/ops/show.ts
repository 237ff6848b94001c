/**
 * wal-show: the archive per timeline (parent, switch point, first and last segment, LSN range,
 * counts, sizes, gaps) and a map of it. Reads the listing plus the small history files.
 */
import type { ArchiveContext } from '../archive/context.js';
import type { ArchiveIdentity } from '../archive/identity.js';
import { historyFileName } from '../segment/names.js';
import { loadHistories, loadInventory } from '../archive/catalog/inventory.js';
import { loadBackupInventory } from '../backup/inventory.js';
import { analyzeTimelines, historyProblems, type ArchiveLayout } from '../archive/catalog/timelines.js';

export interface ShowReport {
  readonly archive: string;
  readonly identity: ArchiveIdentity;
  readonly layout: ArchiveLayout;
  /** History files that are missing, unreadable or inconsistent. */
  readonly historyIssues: readonly string[];
  /** The archive's base backups (complete ones with their LSNs), oldest first by stop LSN. */
  readonly backups: readonly ShowBackup[];
}

export interface ShowBackup {
  readonly name: string;
  readonly status: string;
  readonly timeline: number | null;
  readonly startLsn: string | null;
  readonly endLsn: string | null;
}

export async function showArchive(ctx: ArchiveContext): Promise<ShowReport> {
  const { identity, segSize, entries } = await loadInventory(ctx);
  const { histories, failures } = await loadHistories(ctx, entries);
  const layout = analyzeTimelines(entries, histories, segSize);
  const historyIssues = [
    ...failures.map((f) => `${f.fileName}: ${f.message}`),
    ...historyProblems(entries, histories)
      .filter((p) => !failures.some((f) => f.timeline === p.timeline))
      .map((p) => `${historyFileName(p.timeline)}: ${p.message}`),
  ];
  const backups = (await loadBackupInventory(ctx)).backups.map((b) => ({
    name: b.name,
    status: b.status,
    timeline: b.record?.endTimeline ?? null,
    startLsn: b.record?.startLsn ?? null,
    endLsn: b.record?.endLsn ?? null,
  }));
  return { archive: ctx.storage.description, identity, layout, historyIssues, backups };
}
