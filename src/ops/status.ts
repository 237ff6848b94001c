/**
 * `walvault status`: how far behind is archiving, and is it failing? From the running agent's
 * `/status` endpoint when one is named, otherwise computed from PostgreSQL (position, pg_stat_archiver,
 * the `.ready` queue) and the archive (its newest segment on the server's timeline).
 */
import { join } from 'node:path';
import { summarizeLogFile, type LogFileSummary } from '../common/capped-log.js';
import { BACKGROUND_LOG_NAME, stateDirFor } from '../push/state-dir.js';
import type { ArchiveContext } from '../archive/context.js';
import { readIdentity, type ArchiveIdentity } from '../archive/identity.js';
import { HISTORY_PREFIX, parseObjectKey, timelinePrefix } from '../archive/keys.js';
import { StorageError } from '../common/errors.js';
import { parseLsn, formatLsn, lsn } from '../segment/lsn.js';
import { SegmentName, tryClassifyWalFileName } from '../segment/names.js';
import { parseAgentStatus } from '../daemon/agent-status.js';
import { errorText } from '../common/format.js';
import { loadBackupInventory } from '../backup/inventory.js';
import {
  archiverFailing,
  closeServer,
  connectServer,
  readArchiver,
  readReadyQueue,
  readServerFacts,
  type ArchiverStats,
  type ServerConnection,
} from '../postgres/sql.js';

export interface LastArchived {
  readonly segment: string;
  /** End of the WAL it holds (start of the next segment), or the agent's archived position. */
  readonly endLsn: string;
  readonly at: string | null;
}

export interface StatusReport {
  /** Where the numbers come from. */
  readonly source: 'agent' | 'postgresql' | 'archive';
  /**
   * `ok` only when it was checked: archiving is not failing and the lag is known. `unknown`: not
   * failing as far as anyone can tell, but the lag could not be measured (PostgreSQL unreachable,
   * the agent not connected, nothing archived yet); `stateReason` says why.
   */
  readonly state: 'ok' | 'failing' | 'unknown';
  readonly stateReason: string | null;
  readonly archive: {
    readonly description: string;
    readonly systemId: string;
    readonly pgMajor: number;
    readonly walSegSize: number;
  } | null;
  readonly server: {
    readonly description: string;
    readonly version: string;
    readonly inRecovery: boolean;
    readonly timeline: number;
    readonly currentLsn: string | null;
  } | null;
  readonly lastArchived: LastArchived | null;
  readonly lag: { readonly bytes: number | null; readonly seconds: number | null };
  /** WAL files waiting to be archived (`.ready` files, or the agent's pending uploads). */
  readonly queue: number | null;
  readonly archiver: {
    readonly archivedCount: number;
    readonly failedCount: number;
    readonly lastArchivedWal: string | null;
    readonly lastArchivedTime: string | null;
    readonly lastFailedWal: string | null;
    readonly lastFailedTime: string | null;
  } | null;
  readonly lastError: string | null;
  /** The agent's own status document, as served. */
  readonly agent: Record<string, unknown> | null;
  /** Sources that could not be asked, and why (the report is built from the others). */
  readonly unavailable: readonly string[];
  /** The detached uploader's and prefetcher's log file, when the data directory is known here. */
  readonly backgroundLog?: LogFileSummary;
  /** The archive's base backups, when the archive was asked. */
  readonly backups?: BackupsSummary;
}

/** The background helpers' log of data directory `pgdata` (its state directory), if it exists. */
export interface BackupsSummary {
  readonly complete: number;
  /** The newest complete backup by stop LSN and time. */
  readonly newest: { readonly name: string; readonly stopTime: string; readonly endLsn: string } | null;
  readonly running: number;
  readonly failed: number;
  readonly damaged: number;
  /** Reading the backups failed (the rest of the status stands). */
  readonly error: string | null;
}

/** One listing of backups/ and each backup's record. */
export async function backupsOf(ctx: ArchiveContext): Promise<BackupsSummary> {
  const none = { complete: 0, newest: null, running: 0, failed: 0, damaged: 0 };
  try {
    const { backups } = await loadBackupInventory(ctx);
    const n = (s: string): number => backups.filter((b) => b.status === s).length;
    const complete = backups.flatMap((b) => (b.record ? [b.record] : []));
    const last = complete[complete.length - 1];
    return {
      complete: complete.length,
      newest: last ? { name: last.name, stopTime: last.stopTime, endLsn: last.endLsn } : null,
      running: n('running'),
      failed: n('failed'),
      damaged: n('damaged'),
      error: null,
    };
  } catch (err) {
    if (ctx.signal?.aborted) throw err;
    return { ...none, error: errorText(err) };
  }
}

export function backgroundLogOf(pgdata: string): LogFileSummary | undefined {
  try {
    return summarizeLogFile(join(stateDirFor(pgdata), BACKGROUND_LOG_NAME));
  } catch {
    return undefined;
  }
}

export interface StatusOptions {
  /** Base URL of `walvault stream --metrics-port` (or its /status URL). */
  readonly agentUrl?: string;
  readonly conninfo?: string;
  /** Ask PostgreSQL (default: when no agent URL is given, or a conninfo is). */
  readonly postgres?: boolean;
  readonly now?: Date;
  readonly timeoutMs?: number;
}

export async function collectStatus(ctx: ArchiveContext | undefined, opts: StatusOptions = {}): Promise<StatusReport> {
  const now = opts.now ?? new Date();
  const unavailable: string[] = [];
  if (opts.agentUrl !== undefined) {
    try {
      return fromAgent(await fetchAgentStatus(opts.agentUrl, opts.timeoutMs ?? 5_000), ctx, now);
    } catch (err) {
      unavailable.push(`agent: ${errorText(err)}`);
      if (opts.postgres === false)
        throw new StorageError(`unable to get status from agent '${opts.agentUrl}': ${errorText(err)}`, { cause: err });
    }
  }

  let identity: ArchiveIdentity | undefined;
  if (ctx) {
    try {
      identity = await readIdentity(ctx.storage);
    } catch (err) {
      unavailable.push(`archive: ${errorText(err)}`);
    }
  }

  let conn: ServerConnection | undefined;
  try {
    if (opts.postgres !== false) {
      try {
        conn = await connectServer(opts.conninfo, 'walvault status');
      } catch (err) {
        unavailable.push(`postgresql: ${errorText(err)}`);
      }
    }
    if (conn) return { ...(await fromPostgres(conn, ctx, identity, now)), unavailable };
  } finally {
    await closeServer(conn);
  }

  if (!ctx || !identity) {
    throw new StorageError(`unable to get archiving status: no source answered (${unavailable.join('; ') || 'nothing configured'})`);
  }
  const newest = await newestArchived(ctx, identity, undefined);
  return {
    source: 'archive',
    state: 'unknown',
    stateReason: `the lag cannot be measured without PostgreSQL or the agent (${unavailable.join('; ') || 'neither configured'})`,
    archive: archiveOf(ctx, identity),
    server: null,
    lastArchived: newest,
    lag: { bytes: null, seconds: null },
    queue: null,
    archiver: null,
    lastError: null,
    agent: null,
    unavailable,
  };
}

async function fetchAgentStatus(url: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const target = /\/status\/?$/.test(url) ? url : `${url.replace(/\/+$/, '')}/status`;
  const res = await fetch(target, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${target} answered ${res.status}`);
  const body = (await res.json()) as unknown;
  if (typeof body !== 'object' || body === null) throw new Error(`GET ${target} did not answer a JSON object`);
  return body as Record<string, unknown>;
}

/**
 * Reads either agent's document through the shared /status schema (daemon/agent-status.ts).
 * Failing: an error is reported while the agent is disconnected or has WAL waiting.
 */
async function fromAgent(agent: Record<string, unknown>, ctx: ArchiveContext | undefined, now: Date): Promise<StatusReport> {
  const s = parseAgentStatus(agent);
  const { lastArchivedSegment: lastSegment, lastArchivedAt: lastAt, lagBytes, lastError, queue } = s;
  const isStream = s.agent === 'stream';
  let identity: ArchiveIdentity | undefined;
  if (ctx) identity = await readIdentity(ctx.storage).catch(() => undefined);
  let endLsn = s.archivedLsn;
  if (endLsn === null && lastSegment !== null && identity && /^[0-9A-F]{24}$/.test(lastSegment)) {
    endLsn = formatLsn(lsn((SegmentName.parse(lastSegment, identity.walSegSize).segno + 1n) * BigInt(identity.walSegSize)));
  }
  const lag = isStream ? streamLag(lagBytes, lastAt, now) : daemonLag(queue, lastAt, identity, now);
  const failing = lastError !== null && (s.connected === false || (queue ?? 0) > 0);
  const { state, stateReason } = judge(
    failing,
    lag,
    isStream && s.connected !== true ? 'the agent is not connected to PostgreSQL, so it does not know the server position' : undefined,
  );
  return {
    source: 'agent',
    state,
    stateReason,
    archive: ctx && identity ? archiveOf(ctx, identity) : null,
    server: null,
    lastArchived: lastSegment ? { segment: lastSegment, endLsn: endLsn ?? '?', at: lastAt } : null,
    lag,
    queue,
    archiver: null,
    lastError,
    agent,
    unavailable: [],
  };
}

async function fromPostgres(
  conn: ServerConnection,
  ctx: ArchiveContext | undefined,
  identity: ArchiveIdentity | undefined,
  now: Date,
): Promise<Omit<StatusReport, 'unavailable'>> {
  const facts = await readServerFacts(conn);
  const archiver = await readArchiver(conn);
  let queue: number | null = null;
  let oldestReady: Date | null = null;
  try {
    const q = await readReadyQueue(conn);
    queue = q.count;
    oldestReady = q.oldest;
  } catch {
    // Needs superuser or pg_monitor; the rest of the report stands without it.
  }
  const segSize = identity?.walSegSize ?? facts.walSegSize;
  let last: LastArchived | null = null;
  // Just after a promotion the new timeline has no segment yet: then the newest on any timeline.
  if (ctx && identity) last = (await newestArchived(ctx, identity, facts.timeline)) ?? (await newestArchived(ctx, identity, undefined));
  if (!last && archiver.lastArchivedWal && /^[0-9A-F]{24}$/.test(archiver.lastArchivedWal)) {
    const seg = SegmentName.parse(archiver.lastArchivedWal, segSize);
    last = {
      segment: seg.name,
      endLsn: formatLsn(lsn((seg.segno + 1n) * BigInt(segSize))),
      at: archiver.lastArchivedTime?.toISOString() ?? null,
    };
  }
  let lagBytes: number | null = null;
  if (facts.currentLsn !== null && last && last.endLsn !== '?') {
    const d = facts.currentLsn - parseLsn(last.endLsn);
    lagBytes = d > 0n ? Number(d) : 0;
  }
  let lagSeconds: number | null = null;
  if (oldestReady) lagSeconds = Math.max(0, (now.getTime() - oldestReady.getTime()) / 1000);
  else if (queue === 0 || (lagBytes !== null && lagBytes < segSize)) lagSeconds = 0;
  else if (last?.at) lagSeconds = secondsSince(last.at, now);
  const failing = archiverFailing(archiver);
  const lag = { bytes: lagBytes, seconds: lagSeconds === null ? null : Math.round(lagSeconds) };
  return {
    source: 'postgresql',
    ...judge(failing, lag, undefined),
    archive: ctx && identity ? archiveOf(ctx, identity) : null,
    server: {
      description: conn.description,
      version: facts.version,
      inRecovery: facts.inRecovery,
      timeline: facts.timeline,
      currentLsn: facts.currentLsn === null ? null : formatLsn(facts.currentLsn),
    },
    lastArchived: last,
    lag,
    queue,
    archiver: archiverJson(archiver),
    lastError: failing
      ? `archive_command failed for ${archiver.lastFailedWal ?? '?'} at ${archiver.lastFailedTime?.toISOString() ?? '?'} (${archiver.failedCount} failures since the statistics were reset; see the PostgreSQL log)`
      : null,
    agent: null,
  };
}

type Lag = StatusReport['lag'];

/** Failing wins; otherwise `ok` needs a measured lag (bytes and seconds) and no reason for doubt. */
function judge(failing: boolean, lag: Lag, doubt: string | undefined): Pick<StatusReport, 'state' | 'stateReason'> {
  if (failing) return { state: 'failing', stateReason: null };
  if (doubt !== undefined) return { state: 'unknown', stateReason: doubt };
  if (lag.bytes === null || lag.seconds === null) {
    const what = lag.bytes === null && lag.seconds === null ? 'the lag' : lag.bytes === null ? 'the lag in bytes' : 'the lag in seconds';
    return { state: 'unknown', stateReason: `${what} could not be measured (nothing archived yet, or the server position is unknown)` };
  }
  return { state: 'ok', stateReason: null };
}

/** `walvault stream`: server position minus archived position, as the agent measured it. */
function streamLag(lagBytes: number | null, lastAt: string | null, now: Date): Lag {
  return { bytes: lagBytes, seconds: lagBytes === null ? null : lagBytes === 0 || lastAt === null ? 0 : secondsSince(lastAt, now) };
}

/** `walvault daemon`: knows its `.ready` files, not the server position: lag = the files waiting. */
function daemonLag(ready: number | null, lastAt: string | null, identity: ArchiveIdentity | undefined, now: Date): Lag {
  if (ready === null) return { bytes: null, seconds: null };
  if (ready === 0) return { bytes: 0, seconds: 0 };
  return { bytes: identity ? ready * identity.walSegSize : null, seconds: lastAt === null ? null : secondsSince(lastAt, now) };
}

function archiverJson(a: ArchiverStats): NonNullable<StatusReport['archiver']> {
  return {
    archivedCount: a.archivedCount,
    failedCount: a.failedCount,
    lastArchivedWal: a.lastArchivedWal,
    lastArchivedTime: a.lastArchivedTime?.toISOString() ?? null,
    lastFailedWal: a.lastFailedWal,
    lastFailedTime: a.lastFailedTime?.toISOString() ?? null,
  };
}

function archiveOf(ctx: ArchiveContext, identity: ArchiveIdentity): NonNullable<StatusReport['archive']> {
  return { description: ctx.storage.description, systemId: identity.systemId, pgMajor: identity.pgMajor, walSegSize: identity.walSegSize };
}

function secondsSince(iso: string, now: Date): number | null {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : Math.max(0, Math.round((now.getTime() - t) / 1000));
}

/**
 * The newest full segment on `timeline` (or on the newest timeline the archive knows, stepping back
 * while a timeline has no segments yet). Lists one timeline, not the whole archive.
 */
async function newestArchived(ctx: ArchiveContext, identity: ArchiveIdentity, timeline: number | undefined): Promise<LastArchived | null> {
  let candidates: number[];
  if (timeline !== undefined) candidates = [timeline];
  else {
    const tlis = new Set<number>([1]);
    for await (const obj of ctx.storage.list(HISTORY_PREFIX)) {
      const c = tryClassifyWalFileName(parseObjectKey(obj.key)?.fileName ?? '');
      if (c?.kind === 'history') tlis.add(c.timeline);
    }
    candidates = [...tlis].sort((a, b) => b - a);
  }
  for (const tli of candidates) {
    let best: { segno: bigint; mtime: Date } | undefined;
    for await (const obj of ctx.storage.list(timelinePrefix(tli))) {
      const c = tryClassifyWalFileName(parseObjectKey(obj.key)?.fileName ?? '');
      if (c?.kind !== 'segment') continue;
      const seg = SegmentName.parse(c.name, identity.walSegSize);
      if (!best || seg.segno > best.segno) best = { segno: seg.segno, mtime: obj.mtime };
    }
    if (best) {
      return {
        segment: SegmentName.of(tli, best.segno, identity.walSegSize).name,
        endLsn: formatLsn(lsn((best.segno + 1n) * BigInt(identity.walSegSize))),
        at: best.mtime.toISOString(),
      };
    }
  }
  return null;
}
