/**
 * Readable text for wal-verify, wal-delete, check and status, and the JSON form of a deletion plan.
 * Pure: the reports come from the library functions; the commands print what these return.
 */
import { quoteExcerpt } from '../../common/quote.js';
import { formatLsn, lsn } from '../../segment/lsn.js';
import { segmentFileName } from '../../segment/names.js';
import type { CheckReport } from '../../ops/check.js';
import type { DeleteOutcome, DeletePlan } from '../../ops/delete.js';
import { count, formatBytes, formatDuration, formatTime } from '../../common/format.js';
import { renderFields } from './layout.js';
import { describeBefore, type RetentionObject } from '../../archive/catalog/retention.js';
import type { BackupsSummary, StatusReport } from '../../ops/status.js';
import type { VerifyReport } from '../../ops/verify.js';

export function renderVerify(r: VerifyReport): string {
  const scope = [
    r.timelines.length === 0 ? 'no timelines' : `timeline${r.timelines.length > 1 ? 's' : ''} ${r.timelines.join(', ')}`,
    r.range.from !== null || r.range.to !== null ? `LSN ${r.range.from ?? 'start'} .. ${r.range.to ?? 'end'}` : null,
  ]
    .filter((s) => s !== null)
    .join(', ');
  const lines = [
    `archive: ${r.archive} (system ${r.identity.systemId}, PostgreSQL ${r.identity.pgMajor}, ${formatBytes(r.identity.walSegSize)} segments)`,
    `checked: ${scope}; ${count(r.segments, 'segment')}, ${count(r.objects, 'object')} ` +
      `(${r.deep ? 'downloaded and verified in full' : 'headers; add --deep to download and verify every object'}), ` +
      `${formatBytes(r.bytesRead)} read in ${formatDuration(r.durationMs)}`,
  ];
  if (r.fromRecord > 0)
    lines.push(`not read again: ${count(r.fromRecord, 'object')} an earlier run checked as they are now (--recheck reads them)`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  if (r.problems.length === 0) {
    lines.push('OK: no problems found');
    return lines.join('\n');
  }
  lines.push(`PROBLEMS: ${r.problems.length}`);
  for (const p of r.problems) {
    const parts = [`[${p.kind}]`];
    if (p.timeline !== null) parts.push(`timeline ${p.timeline}`);
    if (p.kind !== 'gap') parts.push(`${p.subject}:`);
    parts.push(p.message);
    lines.push(`  ${parts.join(' ')}`);
  }
  return lines.join('\n');
}

function objectJson(o: RetentionObject): Record<string, unknown> {
  return {
    name: o.fileName,
    kind: o.kind,
    timeline: o.timeline,
    key: o.key,
    storedBytes: o.storedBytes,
    uploadedAt: o.mtime.toISOString(),
  };
}

export function deletePlanJson(p: DeletePlan, outcome: DeleteOutcome | null, dryRun: boolean): Record<string, unknown> {
  const segSize = p.identity.walSegSize;
  return {
    archive: p.archive,
    before: describeBefore(p.before),
    cutoffLsn: p.plan.cutoff === null ? null : formatLsn(lsn(p.plan.cutoff * BigInt(segSize))),
    dryRun,
    delete: p.plan.delete.map(objectJson),
    kept: p.plan.kept,
    historyProblems: p.historyFailures,
    deleted: outcome?.deleted ?? 0,
    interrupted: outcome?.interrupted ?? false,
  };
}

export function renderDeletePlan(p: DeletePlan): string {
  const segSize = p.identity.walSegSize;
  const lines = [`archive: ${p.archive}`];
  const why = p.before.kind === 'time' ? ' (where the oldest segment uploaded since starts)' : '';
  lines.push(
    p.plan.cutoff === null
      ? `cut: ${describeBefore(p.before)}: no WAL file matches`
      : `cut: ${describeBefore(p.before)}: WAL files of segments before ${formatLsn(lsn(p.plan.cutoff * BigInt(segSize)))}${why}`,
  );
  const doomed = p.plan.delete;
  const bytes = doomed.reduce((n, o) => n + o.storedBytes, 0);
  const n = (kind: RetentionObject['kind']): number => doomed.filter((o) => o.kind === kind).length;
  lines.push(
    doomed.length === 0
      ? 'to delete: nothing'
      : `to delete: ${doomed.length} of ${count(p.objects, 'object')}, ${formatBytes(bytes)} stored: ${count(n('segment'), 'segment')}, ` +
          `${count(n('partial'), 'partial')}, ${count(n('backup'), 'backup label')}, ${count(n('history'), 'history file')}`,
  );
  const timelines = [...new Set(doomed.filter((o) => o.segno !== undefined).map((o) => o.timeline))].sort((a, b) => a - b);
  for (const tli of timelines) {
    const segs = doomed.filter((o) => o.timeline === tli && o.segno !== undefined).map((o) => o.segno!);
    const lo = segs.reduce((a, b) => (b < a ? b : a));
    const hi = segs.reduce((a, b) => (b > a ? b : a));
    const span =
      lo === hi ? segmentFileName(tli, lo, segSize) : `${segmentFileName(tli, lo, segSize)} .. ${segmentFileName(tli, hi, segSize)}`;
    lines.push(`  timeline ${tli}: ${span} (${count(segs.length, 'file')})`);
  }
  for (const h of doomed.filter((o) => o.kind === 'history')) lines.push(`  ${h.fileName}`);
  for (const k of p.plan.kept) lines.push(`kept: ${k.fileName}: ${k.reason}`);
  for (const f of p.historyFailures) lines.push(`warning: ${f} (every history file is kept)`);
  return lines.join('\n');
}

export function renderDeleteOutcome(o: DeleteOutcome, total: number): string {
  if (o.interrupted) {
    return `interrupted: deleted ${o.deleted} of ${total} objects (${formatBytes(o.storedBytes)}), oldest first; the rest of the archive is whole. Run the same command again to finish.`;
  }
  return `deleted ${count(o.deleted, 'object')} (${formatBytes(o.storedBytes)}) in ${count(o.batches, 'batch', 'batches')}`;
}

const STATUS_LABEL = { ok: 'ok  ', fail: 'FAIL', warn: 'warn', skip: 'skip' } as const;

export function renderCheck(r: CheckReport): string {
  const width = Math.max(...r.items.map((i) => i.name.length));
  const lines = [`archive: ${r.archive}`];
  for (const i of r.items) lines.push(`${STATUS_LABEL[i.status]}  ${i.name.padEnd(width)}  ${i.detail}`);
  const failed = r.items.filter((i) => i.status === 'fail').map((i) => i.name);
  lines.push(failed.length === 0 ? 'check passed' : `check FAILED: ${failed.join(', ')}`);
  return lines.join('\n');
}

export function renderStatus(r: StatusReport, now: Date): string {
  const rows: Array<[string, string]> = [];
  rows.push(['state', r.state === 'ok' ? 'ok' : r.state === 'failing' ? 'FAILING' : `UNKNOWN: ${r.stateReason ?? 'not checked'}`]);
  rows.push(['source', r.source]);
  if (r.archive) {
    rows.push([
      'archive',
      `${r.archive.description} (system ${r.archive.systemId}, PostgreSQL ${r.archive.pgMajor}, ${formatBytes(r.archive.walSegSize)} segments)`,
    ]);
  }
  if (r.server) {
    rows.push([
      'server',
      `${r.server.description}, PostgreSQL ${r.server.version}, ${r.server.inRecovery ? 'in recovery' : 'primary'}, timeline ${r.server.timeline}, at ${r.server.currentLsn ?? 'an unknown position'}`,
    ]);
  }
  if (r.lastArchived) {
    const at = r.lastArchived.at
      ? `, ${formatTime(new Date(r.lastArchived.at))} (${formatDuration(now.getTime() - Date.parse(r.lastArchived.at))} ago)`
      : '';
    const upTo = r.lastArchived.endLsn === '?' ? '' : ` (up to ${r.lastArchived.endLsn})`;
    rows.push(['last archived', `${r.lastArchived.segment}${upTo}${at}`]);
  } else rows.push(['last archived', 'nothing']);
  const lagBytes = r.lag.bytes === null ? 'unknown bytes' : formatBytes(r.lag.bytes);
  const lagSeconds = r.lag.seconds === null ? 'unknown time' : formatDuration(r.lag.seconds * 1000);
  rows.push(['archive lag', `${lagBytes}, ${lagSeconds}`]);
  const queueUnknown = r.server ? 'unknown (reading pg_wal/archive_status needs pg_monitor or superuser)' : 'unknown';
  rows.push(['queue', r.queue === null ? queueUnknown : `${count(r.queue, 'WAL file')} waiting`]);
  if (r.archiver) {
    const a = r.archiver;
    const failure = a.lastFailedWal
      ? `; last failure ${a.lastFailedWal} at ${a.lastFailedTime ? formatTime(new Date(a.lastFailedTime)) : '?'}`
      : '';
    rows.push(['archiver', `${a.archivedCount} archived, ${a.failedCount} failed${failure}`]);
  }
  if (r.backups) rows.push(['backups', backupsText(r.backups, now)]);
  rows.push(['last error', r.lastError ?? 'none']);
  for (const u of r.unavailable) rows.push(['unavailable', u]);
  if (r.backgroundLog) {
    const last = r.backgroundLog.lastLine === null ? 'empty' : `last line ${quoteExcerpt(r.backgroundLog.lastLine, 200)}`;
    rows.push(['background log', `${r.backgroundLog.path} (${formatBytes(r.backgroundLog.bytes)}; ${last})`]);
  }
  return renderFields(rows);
}

function backupsText(b: BackupsSummary, now: Date): string {
  if (b.error !== null) return `unknown: ${b.error}`;
  const newest = b.newest
    ? `, newest ${b.newest.name} (stopped ${formatTime(new Date(b.newest.stopTime))}, ${formatDuration(now.getTime() - Date.parse(b.newest.stopTime))} ago, at ${b.newest.endLsn})`
    : ' (none complete: walvault backup-push takes one)';
  const others = [
    b.running > 0 ? `${b.running} running` : null,
    b.failed > 0 ? `${b.failed} failed` : null,
    b.damaged > 0 ? `${b.damaged} DAMAGED` : null,
  ].filter((x) => x !== null);
  return `${b.complete} complete${newest}${others.length > 0 ? `; ${others.join(', ')}` : ''}`;
}
