/**
 * What a replication session settles before it streams: that the server fits the archive, the
 * slot, where to start and on which timeline, and the history files the archive needs. Also the
 * timeline to follow when the server ends a historic one.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Logger } from '../common/log.js';
import { ArchiveMismatchError, LocalIoError, ReplicationError, SqlState, WalvaultError, sqlStateOf } from '../common/errors.js';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { ArchiveContext } from '../archive/context.js';
import { requireIdentity } from '../archive/identity.js';
import { lastArchivedSegment } from '../archive/catalog/newest.js';
import { formatLsn, type Lsn } from '../segment/lsn.js';
import { SegmentName, classifyWalFileName, historyFileName, parseWalFileName, segmentStartLsn, segnoOfLsn } from '../segment/names.js';
import { parseTimelineHistory, timelineAfterEnd, timelineToStreamFrom, type TimelineSpan } from '../segment/history.js';
import { timeline as toTimeline, type Timeline } from '../segment/timeline.js';
import type { ReplicationConnection } from '../postgres/replication/connection.js';
import type { Spool } from './spool.js';
import type { UploadQueue } from './uploads.js';

export interface SetupContext {
  readonly archive: ArchiveContext;
  readonly conn: ReplicationConnection;
  readonly spool: Spool;
  readonly uploads: UploadQueue;
  readonly log: Logger;
  readonly slot: string | undefined;
  readonly createSlot: boolean;
  readonly major: number;
}

/** Refuses up front an archive of another cluster, or one that holds WAL but lost its identity. */
export async function checkArchiveFits(archive: ArchiveContext, systemId: string, segSize: number, major: number): Promise<void> {
  archive.identity ??= await requireIdentity(archive.storage, 'stream into this archive');
  const id = archive.identity;
  if (!id) return; // A new archive takes its identity from the first segment archived.
  const problems: string[] = [];
  if (id.systemId !== systemId) problems.push(`the server is database system ${systemId}, the archive belongs to ${id.systemId}`);
  if (id.walSegSize !== segSize) problems.push(`the server's wal_segment_size is ${segSize}, the archive's ${id.walSegSize}`);
  if (id.pgMajor !== major) problems.push(`the server is PostgreSQL ${major}, the archive holds PostgreSQL ${id.pgMajor} WAL`);
  if (problems.length > 0) throw new ArchiveMismatchError(`unable to stream into this archive: ${problems.join('; ')}`);
}

export async function ensureSlot(ctx: SetupContext): Promise<void> {
  const { conn, major } = ctx;
  const slot = ctx.slot!;
  if (major >= 15) {
    if (await conn.readReplicationSlot(slot)) return;
  }
  if (!ctx.createSlot) {
    if (major >= 15) {
      throw new ReplicationError(`unable to use replication slot '${slot}': it does not exist (add --create-slot)`);
    }
    return; // PostgreSQL < 15 cannot check over a replication connection; START_REPLICATION will say.
  }
  try {
    await conn.createPhysicalSlot(slot);
    ctx.log.info({ slot }, 'created physical replication slot');
  } catch (err) {
    if (sqlStateOf(err) !== SqlState.duplicateObject) throw err;
  }
}

/**
 * Where to start: right after what the spool or the archive already holds; else the slot's restart
 * point; else the server's current position. Always a segment start, on the timeline that the
 * server's history says holds it (see timelineToStreamFrom for the one exception).
 */
export async function startPosition(
  ctx: SetupContext,
  serverTimeline: Timeline,
  serverLsn: Lsn,
): Promise<{ start: Lsn; timeline: Timeline }> {
  const { spool, conn, major, log } = ctx;
  const segSize = spool.segSize;
  let start: Lsn | undefined;
  const partials = spool.partialFiles();
  if (partials.length > 0) {
    const newest = partials[partials.length - 1]!;
    start = segmentOf(newest, segSize).startLsn;
    // Older partials are ends of timelines that never got archived (a crash in between).
    for (const p of partials.slice(0, -1)) ctx.uploads.enqueuePartial(p, join(spool.dir, p), true);
  }
  if (start === undefined) {
    const pendingSegs = spool.pendingFiles().filter((f) => classifyWalFileName(f.name).kind === 'segment');
    const lastLocal = pendingSegs.length > 0 ? SegmentName.parse(pendingSegs[pendingSegs.length - 1]!.name, segSize) : undefined;
    let lastArchived: SegmentName | undefined;
    let slotStart: Lsn | undefined;
    try {
      lastArchived = await lastArchivedSegment(ctx.archive.storage, segSize);
    } catch (err) {
      // Storage is down. Everything before the slot's restart point was flushed by this agent, so
      // it is in the spool or archived: stream on from there while uploads retry, rather than
      // wait for storage before receiving anything.
      if (!ctx.slot || major < 15 || (err instanceof WalvaultError && !err.retryable)) throw err;
      const slot = await conn.readReplicationSlot(ctx.slot);
      if (!slot?.restartLsn) throw err;
      slotStart = segmentStart(slot.restartLsn, segSize);
      log.warn({ err, lsn: formatLsn(slotStart) }, 'cannot list the archive; starting from the spool and the slot');
    }
    const candidates = [lastLocal, lastArchived].filter((s): s is SegmentName => s !== undefined);
    if (candidates.length > 0) {
      const last = candidates.reduce((a, b) => (b.segno > a.segno ? b : a));
      start = segmentStartLsn(last.segno + 1n, segSize);
    }
    if (slotStart !== undefined && (start === undefined || slotStart > start)) start = slotStart;
  }
  if (start !== undefined && start > serverLsn) {
    log.warn({ lsn: formatLsn(start), serverLsn: formatLsn(serverLsn) }, 'archive is ahead of the server; starting at the server position');
    start = undefined;
  }
  if (start === undefined && ctx.slot && major >= 15) {
    const slot = await conn.readReplicationSlot(ctx.slot);
    if (slot?.restartLsn) start = segmentStart(slot.restartLsn, segSize);
  }
  start ??= segmentStart(serverLsn, segSize);
  let timeline = serverTimeline;
  if (serverTimeline > 1) {
    const h = await conn.timelineHistory(serverTimeline);
    timeline = timelineToStreamFrom(parseTimelineHistory(h.content, serverTimeline), start, segSize);
  }
  return { start, timeline };
}

/**
 * The timeline to follow after a historic one ended at `switchPoint`: the one the server's
 * current history says holds that point (usually `nextTimeline`; a later, smaller switch point
 * can leave it empty), from where that history starts it.
 */
export async function timelineAfter(ctx: SetupContext, ended: Timeline, nextTimeline: Timeline, switchPoint: Lsn): Promise<TimelineSpan> {
  const current = Math.max(nextTimeline, (await ctx.conn.identifySystem()).timeline);
  const h = await ctx.conn.timelineHistory(current);
  const span = timelineAfterEnd(parseTimelineHistory(h.content, current), switchPoint);
  // Along one history the holder is always newer than the ended timeline; a server whose history
  // changed in between gets the timeline it named, so a stream never goes back.
  if (span.timeline <= ended) return { timeline: toTimeline(nextTimeline), begin: switchPoint, end: null };
  if (span.timeline !== nextTimeline) {
    // Its switch point lies at or before where it would begin (a recovery stopped before its fork).
    ctx.log.info({ timeline: span.timeline, skipped: nextTimeline, lsn: formatLsn(span.begin) }, 'skipping a timeline that holds no WAL');
  }
  return span;
}

/** Archives the history files of `upTo` and its ancestors (idempotent: identical content dedupes). */
export async function archiveHistories(ctx: SetupContext, upTo: number): Promise<void> {
  for (let tli = upTo; tli > 1;) {
    const h = await ctx.conn.timelineHistory(tli);
    const name = historyFileName(tli);
    const path = join(ctx.spool.dir, name);
    if (!existsSync(path)) await writeFileAtomic(path, h.content);
    await ctx.uploads.uploadNow(name, path);
    const history = parseTimelineHistory(h.content, tli);
    const parent = history.entries.length > 0 ? history.entries[history.entries.length - 1]!.parent : 1;
    if (parent >= tli) break;
    tli = parent;
  }
}

/** The segment a spool file name (segment or `.partial`) stands for. */
function segmentOf(fileName: string, segSize: number): SegmentName {
  const parsed = parseWalFileName(fileName, segSize);
  if (parsed.kind === 'history') throw new LocalIoError(`unable to use spool file '${fileName}': not a segment`);
  return parsed.segment;
}

/** Start of the segment that holds `position`. */
function segmentStart(position: Lsn, segSize: number): Lsn {
  return segmentStartLsn(segnoOfLsn(position, segSize), segSize);
}
