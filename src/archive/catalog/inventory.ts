/**
 * The archive as the operator commands see it: its identity, and every WAL object from one listing,
 * sorted here (some S3-compatible services do not list in byte order), plus the decoded history
 * files, which are the only objects read in full to answer "which timeline came from where".
 */
import { compareEntries, listCatalog, type CatalogEntry } from './listing.js';
import type { ArchiveContext } from '../context.js';
import { restoreFile } from '../../restore/fetch.js';
import { readIdentity, type ArchiveIdentity } from '../identity.js';
import { HISTORY_PREFIX, IDENTITY_KEY, WAL_PREFIX } from '../keys.js';
import { ExitCode, NotFoundError, WalvaultError, IntegrityError } from '../../common/errors.js';
import { parseTimelineHistory, type TimelineHistory } from '../../segment/history.js';
import { errorText } from '../../common/format.js';

export interface Inventory {
  readonly identity: ArchiveIdentity;
  readonly segSize: number;
  /** By timeline, then segment number (a timeline's history file first), then name and key. */
  readonly entries: readonly CatalogEntry[];
}

// Moved beside listCatalog so pure modules can sort entries without this module's I/O imports.
export { compareEntries } from './listing.js';

/**
 * Reads the identity. NotFoundError when the archive has no identity and no WAL (nothing was ever
 * archived there); IntegrityError when it has WAL but no identity.
 */
export async function loadArchiveIdentity(ctx: ArchiveContext): Promise<ArchiveIdentity> {
  const identity = await readIdentity(ctx.storage);
  if (!identity) {
    for (const prefix of [WAL_PREFIX, HISTORY_PREFIX]) {
      for await (const obj of ctx.storage.list(prefix)) {
        throw new IntegrityError(
          `unable to read archive '${ctx.storage.description}': it holds WAL ('${obj.key}') but no identity record ('${IDENTITY_KEY}'); restore it from a backup or run 'walvault identity-rebuild'`,
        );
      }
    }
    throw new NotFoundError(`unable to read archive '${ctx.storage.description}': it is empty (nothing was archived there yet)`);
  }
  ctx.identity = identity;
  return identity;
}

/**
 * Reads the identity and lists the whole archive into memory, sorted (see loadArchiveIdentity for
 * the errors). The operator commands that only aggregate stream listCatalog instead.
 */
export async function loadInventory(ctx: ArchiveContext, opts: { timeline?: number } = {}): Promise<Inventory> {
  const identity = await loadArchiveIdentity(ctx);
  const entries: CatalogEntry[] = [];
  for await (const e of listCatalog(ctx.storage, identity.walSegSize, opts)) entries.push(e);
  entries.sort(compareEntries);
  return { identity, segSize: identity.walSegSize, entries };
}

export interface HistoryFailure {
  readonly fileName: string;
  readonly timeline: number;
  readonly message: string;
}

export interface LoadedHistories {
  readonly histories: Map<number, TimelineHistory>;
  /** History files that exist but cannot be proven intact or parsed. */
  readonly failures: readonly HistoryFailure[];
}

/**
 * Downloads, verifies and parses every archived history file. One that is damaged, ambiguous or
 * unparsable is a failure to report, not a reason to stop; storage errors still propagate.
 */
export async function loadHistories(ctx: ArchiveContext, entries: readonly CatalogEntry[]): Promise<LoadedHistories> {
  const histories = new Map<number, TimelineHistory>();
  const failures: HistoryFailure[] = [];
  // One download per name (a name may have several versions); the listing already parsed its timeline.
  const names = new Map(entries.filter((e) => e.kind === 'history').map((e) => [e.fileName, e.timeline]));
  await Promise.all(
    [...names].map(async ([fileName, timeline]) => {
      try {
        const restored = await restoreFile(ctx, fileName);
        histories.set(timeline, parseTimelineHistory(restored.bytes, timeline));
      } catch (err) {
        if (!(err instanceof WalvaultError) || err.exitCode !== ExitCode.integrity) throw err;
        failures.push({ fileName, timeline, message: errorText(err) });
      }
    }),
  );
  failures.sort((a, b) => a.timeline - b.timeline);
  return { histories, failures };
}
