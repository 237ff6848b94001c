/**
 * backup-verify: is this backup restorable? Its completion record against the archive, every
 * object read and checked (backup-verify-content.ts), PostgreSQL's manifest against the catalog,
 * and the WAL it needs (walFirst..walLast) present and chained as recovery reads it. An
 * incremental backup also needs its chain (backup-verify-chain.ts): verifying it verifies every
 * backup its restore reads, each as a result of its own. Problems are
 * collected, never thrown, so the operator gets the complete list; only failures to look (storage,
 * interruption) are thrown.
 */
import type { ArchiveContext } from '../archive/context.js';
import { chainRanges, historyOrSelf } from '../archive/catalog/timelines.js';
import { missingRanges } from '../archive/catalog/segment-ranges.js';
import { chainBreak, segmentEdges, type SegmentEdges } from '../archive/catalog/wal-chain.js';
import { AbortedError } from '../common/errors.js';
import { errorText } from '../common/format.js';
import { decodeCatalog, type Catalog } from '../backup/catalog.js';
import { reachableNeeds, type DamagedRecords } from '../backup/chains.js';
import { completeBackups, damagedRecords, loadBackup, loadBackupInventory, type BackupEntry } from '../backup/inventory.js';
import { loadBackupObject } from '../backup/objects.js';
import { parsePgManifest } from '../backup/pg-manifest.js';
import type { BackupRecord } from '../backup/record.js';
import { restoreFile } from '../restore/fetch.js';
import { parseLsn } from '../segment/lsn.js';
import { SegmentName, segmentFileName, segmentStartLsn, segnoOfLsn } from '../segment/names.js';
import { checkCatalogAgainstRecord, checkManifest, checkPacks, isFinding, type Findings } from './backup-verify-content.js';
import { checkChain, checkReferencingFiles } from './backup-verify-chain.js';
import { loadWalView, type WalView } from './backup-list.js';

export interface BackupVerifyResult {
  readonly name: string;
  readonly status: BackupEntry['status'];
  readonly problems: readonly string[];
  readonly notes: readonly string[];
  readonly packs: number;
  readonly files: number;
  readonly bytesRead: number;
  /** Files of PostgreSQL's manifest that matched; null without a manifest. */
  readonly manifestFiles: number | null;
  readonly walSegments: number;
}

export interface BackupVerifyReport {
  readonly archive: string;
  readonly backups: readonly BackupVerifyResult[];
  /** Backups not verified with --all (running, or failed leftovers), and why. */
  readonly skipped: readonly string[];
  readonly durationMs: number;
}

export interface BackupVerifyOptions {
  /** Packs downloaded ahead of the one being hashed. */
  readonly ahead?: number;
}

export async function verifyBackups(
  ctx: ArchiveContext,
  target: { name: string } | { all: true },
  opts: BackupVerifyOptions = {},
): Promise<BackupVerifyReport> {
  const started = performance.now();
  const inventory = await loadBackupInventory(ctx);
  const complete = completeBackups(inventory);
  const damaged = damagedRecords(inventory);
  // A backup is only as good as its chain: verifying one verifies every backup its restore reads,
  // down to one that breaks the chain (a damaged record is then a result of its own, naming its key).
  let entries: BackupEntry[];
  if ('name' in target) {
    const named = inventory.backups.find((b) => b.name === target.name) ?? (await loadBackup(ctx, target.name));
    const needed = named.record ? reachableNeeds(named.record, new Map(complete.map((r) => [r.name, r]))) : [];
    entries = [named, ...inventory.backups.filter((b) => b.name !== named.name && needed.includes(b.name)).reverse()];
  } else entries = [...inventory.backups];
  const wal = await loadWalView(ctx);
  const results: BackupVerifyResult[] = [];
  const skipped: string[] = [];
  for (const entry of entries) {
    if ('all' in target && (entry.status === 'running' || entry.status === 'failed')) {
      skipped.push(`${entry.name}: ${entry.status}${entry.reason ? ` (${entry.reason})` : ''}`);
      continue;
    }
    if (ctx.signal?.aborted) throw new AbortedError('unable to verify backups: interrupted', { cause: ctx.signal.reason });
    results.push(await verifyOne(ctx, entry, wal, { complete, damaged }, opts));
  }
  return { archive: ctx.storage.description, backups: results, skipped, durationMs: Math.round(performance.now() - started) };
}

async function verifyOne(
  ctx: ArchiveContext,
  entry: BackupEntry,
  wal: WalView | null,
  archive: { complete: readonly BackupRecord[]; damaged: DamagedRecords },
  opts: BackupVerifyOptions,
): Promise<BackupVerifyResult> {
  const out: Findings = { problems: [], notes: [...entry.notes] };
  const result = { name: entry.name, status: entry.status, problems: out.problems, notes: out.notes };
  const empty = { ...result, packs: 0, files: 0, bytesRead: 0, manifestFiles: null, walSegments: 0 };
  const record = entry.record;
  if (!record) {
    out.problems.push(`not a complete backup: ${entry.status}${entry.reason ? `: ${entry.reason}` : ''}`);
    return empty;
  }
  const listed = new Set(entry.objects.map((o) => o.key));
  checkRecord(record, wal, out);

  let catalog: Catalog | undefined;
  if (!listed.has(record.catalog.key)) out.problems.push(`catalog ('${record.catalog.key}') is missing from the archive`);
  else {
    try {
      catalog = decodeCatalog(await loadBackupObject(ctx, record.catalog), record.catalog.key, record.name);
    } catch (err) {
      if (!isFinding(err)) throw err;
      out.problems.push(`catalog: ${errorText(err)}`);
    }
  }
  let manifestFiles: number | null = null;
  if (record.manifest === null) out.notes.push('the server sent no backup_manifest: nothing to hold the catalog against');
  else if (!listed.has(record.manifest.key)) out.problems.push(`manifest ('${record.manifest.key}') is missing from the archive`);
  else if (catalog) {
    try {
      const manifest = parsePgManifest(await loadBackupObject(ctx, record.manifest), record.manifest.key);
      manifestFiles = checkManifest(manifest, record, catalog, out);
    } catch (err) {
      if (!isFinding(err)) throw err;
      out.problems.push(`manifest: ${errorText(err)}`);
    }
  }
  let packs = { packsRead: 0, bytesRead: 0, filesChecked: 0 };
  if (catalog) {
    checkCatalogAgainstRecord(record, catalog, out);
    packs = await checkPacks(ctx, record, catalog, listed, out, opts.ahead);
    if (record.parent !== null || (catalog.depends?.length ?? 0) > 0) {
      const catalogs = await checkChain(ctx, record, archive.complete, out, archive.damaged);
      if (catalogs) {
        const refs = await checkReferencingFiles(ctx, record, catalog, catalogs, out);
        packs = { ...packs, filesChecked: packs.filesChecked + refs.files, bytesRead: packs.bytesRead + refs.bytesRead };
      }
    }
  }
  const walSegments = wal ? await checkWal(ctx, record, wal, out) : 0;
  if (!wal) out.problems.push(`WAL: the archive holds no WAL; ${record.walFirst} .. ${record.walLast} are needed`);
  return { ...result, packs: packs.packsRead, files: packs.filesChecked, bytesRead: packs.bytesRead, manifestFiles, walSegments };
}

/** The record against the archive it sits in, and against itself. */
function checkRecord(record: BackupRecord, wal: WalView | null, out: Findings): void {
  if (wal && record.systemId !== wal.identity.systemId) {
    out.problems.push(`backup.json: system identifier ${record.systemId}, the archive's is ${wal.identity.systemId}`);
  }
  if (wal && record.walSegSize !== wal.segSize) {
    out.problems.push(`backup.json: WAL segment size ${record.walSegSize}, the archive's is ${wal.segSize}`);
  }
  const seg = (name: string): SegmentName | undefined => {
    try {
      return SegmentName.parse(name, record.walSegSize);
    } catch {
      return undefined;
    }
  };
  const first = seg(record.walFirst);
  const last = seg(record.walLast);
  if (!first || first.segno !== segnoOfLsn(parseLsn(record.startLsn), record.walSegSize) || first.timeline !== record.startTimeline) {
    out.problems.push(
      `backup.json: walFirst ${record.walFirst} does not hold the start LSN ${record.startLsn} on timeline ${record.startTimeline}`,
    );
  }
  if (!last || last.segno !== segnoOfLsn(parseLsn(record.endLsn), record.walSegSize) || last.timeline !== record.endTimeline) {
    out.problems.push(
      `backup.json: walLast ${record.walLast} does not hold the end LSN ${record.endLsn} on timeline ${record.endTimeline}`,
    );
  }
}

/** walFirst..walLast along the end timeline's history: present, intact and each continuing the one before. */
async function checkWal(ctx: ArchiveContext, record: BackupRecord, wal: WalView, out: Findings): Promise<number> {
  const size = wal.segSize;
  const first = SegmentName.parse(record.walFirst, size).segno;
  const last = SegmentName.parse(record.walLast, size).segno;
  const names: string[] = [];
  for (const { timeline, range } of chainRanges(historyOrSelf(wal.histories, record.endTimeline), last, size)) {
    const from = range.first > first ? range.first : first;
    if (range.last < from) continue;
    for (const hole of missingRanges(wal.present.get(timeline) ?? [], { first: from, last: range.last })) {
      const a = segmentFileName(timeline, hole.first, size);
      const what = hole.first === hole.last ? a : `${a} .. ${segmentFileName(timeline, hole.last, size)}`;
      out.problems.push(`WAL: ${what} is missing from the archive (needed from ${record.walFirst} to ${record.walLast})`);
    }
    for (let s = from; s <= range.last; s++) names.push(segmentFileName(timeline, s, size));
  }
  let prev: { name: string; edges: SegmentEdges } | undefined;
  let checked = 0;
  for (const name of names) {
    const segno = SegmentName.parse(name, size).segno;
    if (!(wal.present.get(SegmentName.parse(name, size).timeline) ?? []).includes(segno)) {
      prev = undefined;
      continue;
    }
    try {
      const restored = await restoreFile(ctx, name, { expectedSystemId: wal.identity.systemId });
      const edges = segmentEdges(restored.bytes);
      if (edges.startLsn !== segmentStartLsn(segno, size)) out.problems.push(`WAL: ${name} does not start at its own position`);
      const why = prev ? chainBreak(prev.edges, edges) : undefined;
      if (prev && why) out.problems.push(`WAL: ${name} does not continue ${prev.name}: ${why}`);
      prev = { name, edges };
      checked++;
    } catch (err) {
      if (!isFinding(err)) throw err;
      out.problems.push(`WAL: ${errorText(err)}`);
      prev = undefined;
    }
  }
  return checked;
}
