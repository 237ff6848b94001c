/**
 * wal-show: the archive per timeline (parent, switch point, first and last segment, LSN range,
 * counts, sizes, gaps) and a map of it. Reads the listing plus the small history files.
 */
import type { ArchiveContext } from '../archive/context.js';
import type { ArchiveIdentity } from '../archive/identity.js';
import { historyFileName } from '../segment/names.js';
import { loadArchiveIdentity, loadHistories } from '../archive/catalog/inventory.js';
import { listCatalog, type CatalogEntry } from '../archive/catalog/listing.js';
import { TimelineAggregator, historyProblems, type ArchiveLayout } from '../archive/catalog/timelines.js';
import { loadBackupInventory } from '../backup/inventory.js';

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
  const identity = await loadArchiveIdentity(ctx);
  const segSize = identity.walSegSize;
  // One pass over the listing into per-timeline tallies: memory grows with timelines and gaps, not objects.
  const tally = new TimelineAggregator();
  const historyEntries: CatalogEntry[] = [];
  for await (const e of listCatalog(ctx.storage, segSize)) {
    tally.add(e);
    if (e.kind === 'history') historyEntries.push(e);
  }
  const { histories, failures } = await loadHistories(ctx, historyEntries);
  const layout = tally.layout(histories, segSize);
  // historyProblems only asks which timelines hold segments.
  const withSegments = [...tally.present().keys()].map((timeline) => ({
    fileName: '',
    kind: 'segment' as const,
    timeline,
    storedBytes: 0,
  }));
  const historyIssues = [
    ...failures.map((f) => `${f.fileName}: ${f.message}`),
    ...historyProblems([...withSegments, ...historyEntries], histories)
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
