/**
 * wal-list without holding the listing: rows in listWal's order, handed over one at a time. The
 * history files (one per timeline) are listed first; then wal/ is read once, in key order, which
 * within a timeline is listWal's order (timeline, segment, name, key), with each timeline's history
 * file put in front of it. Some S3-compatible services do not list in byte order: when an entry
 * comes out of order, the sink is told to start again and the rows come from the sorted, in-memory
 * inventory instead, as before.
 */
import type { ArchiveContext } from '../archive/context.js';
import { compareEntries, listCatalog, type CatalogEntry } from '../archive/catalog/listing.js';
import { loadArchiveIdentity, loadInventory } from '../archive/catalog/inventory.js';
import { matchesFilter, toRow, type WalListFilter, type WalListRow } from './list.js';

export interface WalRowSink {
  row(r: WalListRow): void | Promise<void>;
  /** Forget the rows handed over so far: they come again, all of them, in order. */
  restart(): void | Promise<void>;
}

export interface WalListHead {
  readonly archive: string;
  readonly systemId: string;
  readonly walSegSize: number;
}

class OutOfOrder extends Error {}

export async function eachWalRow(ctx: ArchiveContext, filter: WalListFilter, sink: WalRowSink): Promise<WalListHead> {
  const identity = await loadArchiveIdentity(ctx);
  const segSize = identity.walSegSize;
  const head = { archive: ctx.storage.description, systemId: identity.systemId, walSegSize: segSize };
  const scope = filter.timeline !== undefined ? { timeline: filter.timeline } : {};
  try {
    await inKeyOrder(ctx, segSize, scope, async (e) => {
      if (matchesFilter(e, segSize, filter)) await sink.row(toRow(e, segSize));
    });
  } catch (err) {
    if (!(err instanceof OutOfOrder)) throw err;
    ctx.log.debug({ component: 'ops.list' }, 'storage lists out of key order; sorting the listing in memory');
    await sink.restart();
    const inv = await loadInventory(ctx, scope);
    for (const e of inv.entries) if (matchesFilter(e, segSize, filter)) await sink.row(toRow(e, segSize));
  }
  return head;
}

/** Every catalog entry in compareEntries order, from one pass; throws OutOfOrder when the listing is not. */
async function inKeyOrder(
  ctx: ArchiveContext,
  segSize: number,
  scope: { timeline?: number },
  each: (e: CatalogEntry) => Promise<void>,
): Promise<void> {
  const histories: CatalogEntry[] = [];
  for await (const e of listCatalog(ctx.storage, segSize, { ...scope, only: 'history' })) histories.push(e);
  histories.sort(compareEntries);
  let next = 0;
  let prev: CatalogEntry | undefined;
  for await (const e of listCatalog(ctx.storage, segSize, { ...scope, only: 'wal' })) {
    while (next < histories.length && compareEntries(histories[next]!, e) < 0) await each(histories[next++]!);
    if (prev && compareEntries(prev, e) > 0) throw new OutOfOrder();
    prev = e;
    await each(e);
  }
  while (next < histories.length) await each(histories[next++]!);
}
