/**
 * backup-list and backup-show: the backups with their status, and for each complete one the
 * recovery window it opens in this archive's WAL. One listing of `backups/` and one of the WAL
 * (plus the history files), however many backups there are.
 */
import type { ArchiveContext } from '../archive/context.js';
import type { ArchiveIdentity } from '../archive/identity.js';
import { loadHistories, loadInventory } from '../archive/catalog/inventory.js';
import { presentSegments } from '../archive/catalog/timelines.js';
import { NotFoundError } from '../common/errors.js';
import type { TimelineHistory } from '../segment/history.js';
import { chainSummary, type ChainSummary } from '../backup/chains.js';
import { completeBackups, loadBackup, loadBackupInventory, type BackupEntry } from '../backup/inventory.js';
import type { BackupRecord } from '../backup/record.js';
import { recoveryWindow, type RecoveryWindow } from './backup-window.js';

export interface BackupListItem {
  readonly backup: BackupEntry;
  /** Complete backups only; null also when the archive holds no WAL at all. */
  readonly window: RecoveryWindow | null;
  /** Complete backups only: parent, depth, own and total (chain) stored size. */
  readonly chain: ChainSummary | null;
}

export interface BackupListReport {
  readonly archive: string;
  /** null: the archive has no identity record yet (nothing archived). */
  readonly identity: ArchiveIdentity | null;
  readonly backups: readonly BackupListItem[];
  /** History files that could not be read: windows past their timeline switch may be shorter. */
  readonly historyProblems: readonly string[];
}

export interface WalView {
  readonly identity: ArchiveIdentity;
  readonly segSize: number;
  readonly present: ReadonlyMap<number, readonly bigint[]>;
  readonly histories: ReadonlyMap<number, TimelineHistory>;
  readonly historyProblems: readonly string[];
}

/** The archive's WAL as the window computation needs it, or null for an archive with nothing in it. */
export async function loadWalView(ctx: ArchiveContext): Promise<WalView | null> {
  let inv;
  try {
    inv = await loadInventory(ctx);
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
  const { histories, failures } = await loadHistories(ctx, inv.entries);
  return {
    identity: inv.identity,
    segSize: inv.segSize,
    present: presentSegments(inv.entries),
    histories,
    historyProblems: failures.map((f) => `${f.fileName}: ${f.message}`),
  };
}

function withWindow(backup: BackupEntry, wal: WalView | null, byName: ReadonlyMap<string, BackupRecord>): BackupListItem {
  const window = backup.record && wal ? recoveryWindow(backup.record, wal.present, wal.histories, wal.segSize) : null;
  return { backup, window, chain: backup.record ? chainSummary(backup.record, byName) : null };
}

const recordsByName = (records: readonly BackupRecord[]): Map<string, BackupRecord> => new Map(records.map((r) => [r.name, r]));

export async function listBackups(ctx: ArchiveContext, opts: { now?: Date } = {}): Promise<BackupListReport> {
  const [inventory, wal] = await Promise.all([loadBackupInventory(ctx, opts), loadWalView(ctx)]);
  const byName = recordsByName(completeBackups(inventory));
  return {
    archive: ctx.storage.description,
    identity: wal?.identity ?? null,
    backups: inventory.backups.map((b) => withWindow(b, wal, byName)),
    historyProblems: wal?.historyProblems ?? [],
  };
}

export interface BackupShowReport {
  readonly archive: string;
  readonly item: BackupListItem;
  /** Objects by kind, from the listing. */
  readonly packs: number;
  readonly historyProblems: readonly string[];
}

export async function showBackup(ctx: ArchiveContext, name: string, opts: { now?: Date } = {}): Promise<BackupShowReport> {
  // The whole inventory: the chain's size and depth need the other backups' records.
  const [inventory, wal] = await Promise.all([loadBackupInventory(ctx, opts), loadWalView(ctx)]);
  const backup = inventory.backups.find((b) => b.name === name) ?? (await loadBackup(ctx, name, opts));
  return {
    archive: ctx.storage.description,
    item: withWindow(backup, wal, recordsByName(completeBackups(inventory))),
    packs: backup.objects.filter((o) => o.key.includes('/packs/')).length,
    historyProblems: wal?.historyProblems ?? [],
  };
}
