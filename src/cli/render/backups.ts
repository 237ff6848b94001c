/**
 * Readable text and JSON for backup-list and backup-show. Pure: the reports come from src/ops; the
 * commands print what these return.
 */
import { count, formatBytes, formatDuration, formatTime } from '../../common/format.js';
import { formatLsn } from '../../segment/lsn.js';
import type { BackupEntry } from '../../backup/inventory.js';
import type { BackupListItem, BackupListReport, BackupShowReport } from '../../ops/backup-list.js';
import type { RecoveryWindow } from '../../ops/backup-window.js';
import type { BackupVerifyReport } from '../../ops/backup-verify.js';
import type { BackupDecision } from '../../ops/backup-retention.js';
import type { BackupDeleteOutcome, BackupDeletePlan } from '../../ops/backup-delete.js';
import type { ExpireOutcome, ExpirePlan } from '../../ops/expire.js';
import type { RetentionObject } from '../../archive/catalog/retention.js';
import { renderFields, renderTable } from './layout.js';

/** server_version_num as PostgreSQL prints the version: 150004 -> 15.4. */
export function pgVersionText(num: number): string {
  return num >= 100000
    ? `${Math.floor(num / 10000)}.${num % 10000}`
    : `${Math.floor(num / 10000)}.${Math.floor(num / 100) % 100}.${num % 100}`;
}

const time = (iso: string | null | undefined): string => (iso ? formatTime(new Date(iso)) : '-');

export function windowText(w: RecoveryWindow | null): string {
  if (w === null) return '-';
  if (!w.consistent) return `NONE: missing ${w.gap} (needed to become consistent)`;
  const to = formatLsn(w.to!);
  return w.stop === 'end' ? `${formatLsn(w.from)} .. ${to} (newest WAL)` : `${formatLsn(w.from)} .. ${to} (gap at ${w.gap})`;
}

function windowJson(w: RecoveryWindow | null): Record<string, unknown> | null {
  if (w === null) return null;
  return {
    timeline: w.timeline,
    from: formatLsn(w.from),
    to: w.to === null ? null : formatLsn(w.to),
    lastSegment: w.lastSegment,
    stop: w.stop,
    gap: w.gap,
    consistent: w.consistent,
  };
}

function entryJson(b: BackupEntry): Record<string, unknown> {
  return {
    name: b.name,
    status: b.status,
    reason: b.reason,
    abandoned: b.abandoned,
    lastActivity: b.lastActivity.toISOString(),
    objects: b.objects.length,
    storedBytesListed: b.storedBytes,
    started: b.started,
    failure: b.failure,
    notes: b.notes,
    record: b.record,
  };
}

export function itemJson(i: BackupListItem): Record<string, unknown> {
  return { ...entryJson(i.backup), recoveryWindow: windowJson(i.window), chain: i.chain };
}

/** 'full', or 'incr' with the depth of its chain ('incr 2': two parent links to its full backup). */
function typeText(i: BackupListItem): string {
  const c = i.chain;
  if (!c) return '-';
  if (c.parent === null) return 'full';
  return c.depth === null ? 'incr BROKEN' : `incr ${c.depth}`;
}

export function backupListJson(r: BackupListReport): Record<string, unknown> {
  return { archive: r.archive, backups: r.backups.map(itemJson), historyProblems: r.historyProblems };
}

export function renderBackupList(r: BackupListReport): string {
  const lines = [`archive: ${r.archive}`];
  if (r.backups.length === 0) {
    lines.push('no backups (take one with walvault backup-push)');
    return lines.join('\n');
  }
  const rows = r.backups.map((item) => {
    const { backup: b, window } = item;
    const rec = b.record;
    if (!rec) {
      const start = b.started?.startTime ?? null;
      return [b.name, b.status, time(start), '-', '-', '-', '-', '-', '-', '-', formatBytes(b.storedBytes), '-', '-'];
    }
    return [
      b.name,
      b.status,
      time(rec.startTime),
      time(rec.stopTime),
      `${rec.startLsn} .. ${rec.endLsn}`,
      rec.startTimeline === rec.endTimeline ? String(rec.endTimeline) : `${rec.startTimeline}-${rec.endTimeline}`,
      pgVersionText(rec.pgVersionNum),
      typeText(item),
      rec.parent ?? '-',
      formatBytes(rec.rawBytes),
      formatBytes(rec.storedBytes),
      item.chain?.totalBytes == null ? '-' : formatBytes(item.chain.totalBytes),
      windowText(window),
    ];
  });
  lines.push(
    renderTable(
      [
        { title: 'NAME' },
        { title: 'STATUS' },
        { title: 'START' },
        { title: 'STOP' },
        { title: 'LSN' },
        { title: 'TLI', align: 'right' },
        { title: 'PG' },
        { title: 'TYPE' },
        { title: 'PARENT' },
        { title: 'RAW', align: 'right' },
        { title: 'STORED', align: 'right' },
        { title: 'CHAIN', align: 'right' },
        { title: 'RECOVERY WINDOW' },
      ],
      rows,
    ),
  );
  for (const { backup: b, chain } of r.backups) {
    if (b.status !== 'complete' && b.reason) lines.push(`${b.name}: ${b.status}: ${b.reason}`);
    if (chain?.broken) lines.push(`${b.name}: not restorable: ${chain.broken}`);
    for (const n of b.notes) lines.push(`${b.name}: note: ${n}`);
  }
  for (const p of r.historyProblems) lines.push(`warning: ${p}`);
  return lines.join('\n');
}

export function backupShowJson(r: BackupShowReport): Record<string, unknown> {
  return { archive: r.archive, packsListed: r.packs, ...itemJson(r.item), historyProblems: r.historyProblems };
}

function chainRows(i: BackupListItem): Array<[string, string]> {
  const c = i.chain;
  if (!c || c.parent === null) return [];
  if (c.broken) return [['chain', `BROKEN: ${c.broken}`]];
  const total = c.totalBytes === null ? '-' : formatBytes(c.totalBytes);
  return [
    ['chain', `depth ${c.depth} (parent links to its full backup); ${total} stored by every backup a restore reads`],
    ['reused', `${formatBytes(c.reusedBytes)} of file content referenced in earlier backups, not stored again`],
  ];
}

export function renderBackupShow(r: BackupShowReport): string {
  const { backup: b, window } = r.item;
  const rows: Array<[string, string]> = [
    ['backup', b.name],
    ['archive', r.archive],
    ['status', b.reason ? `${b.status}: ${b.reason}` : b.status],
  ];
  const rec = b.record;
  if (rec) {
    rows.push(
      ['type', rec.parent === null ? rec.type : `${rec.type} (parent ${rec.parent})`],
      ...chainRows(r.item),
      ['label', rec.label],
      ['PostgreSQL', `${pgVersionText(rec.pgVersionNum)} (system ${rec.systemId}, ${formatBytes(rec.walSegSize)} segments)`],
      ['start', `${time(rec.startTime)} at ${rec.startLsn} on timeline ${rec.startTimeline}`],
      ['stop', `${time(rec.stopTime)} at ${rec.endLsn} on timeline ${rec.endTimeline}`],
      ['checkpoint', rec.checkpointLsn ?? '-'],
      ['WAL needed', rec.walFirst === rec.walLast ? rec.walFirst : `${rec.walFirst} .. ${rec.walLast}`],
      ['recovery window', windowText(window)],
      ['files', `${count(rec.files, 'file')}, ${count(rec.entries, 'entry', 'entries')} in all (directories and links included)`],
      [
        'size',
        `${formatBytes(rec.rawBytes)} raw, ${formatBytes(rec.storedBytes)} stored in ${count(rec.packs, 'pack')} (${rec.compression})`,
      ],
      ['encryption', rec.encryptionKeyId === null ? 'none' : `key ${rec.encryptionKeyId}`],
      ['manifest', rec.manifest === null ? 'none (the server sent none)' : `${rec.manifest.key} (${formatBytes(rec.manifest.size)})`],
      ['written by', `${rec.writer} on ${rec.host}`],
    );
    if (rec.tablespaces.length === 0) rows.push(['tablespaces', 'none']);
    for (const t of rec.tablespaces) rows.push(['tablespace', `${t.oid} at ${t.location} (${formatBytes(t.bytes)})`]);
  } else {
    if (b.started) {
      rows.push(['started', `${time(b.started.startTime)} by ${b.started.writer} on ${b.started.host} (pid ${b.started.pid})`]);
      rows.push(['label', b.started.label]);
    }
    if (b.failure) rows.push(['failure', `${time(b.failure.at)} ${b.failure.code}: ${b.failure.error}`]);
  }
  rows.push([
    'objects',
    `${count(b.objects.length, 'object')}, ${formatBytes(b.storedBytes)} (last written ${time(b.lastActivity.toISOString())})`,
  ]);
  if (!rec && b.abandoned) rows.push(['leftovers', "abandoned: 'walvault expire' or the next backup-push deletes them"]);
  for (const n of b.notes) rows.push(['note', n]);
  for (const p of r.historyProblems) rows.push(['warning', p]);
  return renderFields(rows);
}

export function backupVerifyJson(r: BackupVerifyReport): Record<string, unknown> {
  return { ok: r.backups.every((b) => b.problems.length === 0), ...r };
}

/** Every problem on a line of its own, prefixed by the backup's name, so scripts can grep them. */
export function renderBackupVerify(r: BackupVerifyReport): string {
  const lines = [`archive: ${r.archive}`];
  for (const b of r.backups) {
    const manifest = b.manifestFiles === null ? 'no manifest' : `${count(b.manifestFiles, 'manifest file')} matched`;
    lines.push(
      `${b.name}: ${count(b.packs, 'pack')} read (${formatBytes(b.bytesRead)}), ${count(b.files, 'file')} checked, ${manifest}, ` +
        `${count(b.walSegments, 'WAL segment')} chained: ${b.problems.length === 0 ? 'OK' : `${count(b.problems.length, 'PROBLEM')}`}`,
    );
  }
  for (const s of r.skipped) lines.push(`skipped: ${s}`);
  for (const b of r.backups) for (const n of b.notes) lines.push(`note: ${b.name}: ${n}`);
  const problems = r.backups.flatMap((b) => b.problems.map((p) => `${b.name}: ${p}`));
  if (r.backups.length === 0) lines.push('no complete backups to verify');
  lines.push(problems.length === 0 ? `OK: no problems found (${formatDuration(r.durationMs)})` : `PROBLEMS: ${problems.length}`);
  lines.push(...problems);
  return lines.join('\n');
}

function walSpan(objs: readonly RetentionObject[]): string {
  if (objs.length === 0) return 'nothing';
  const n = (kind: RetentionObject['kind']): number => objs.filter((o) => o.kind === kind).length;
  const bytes = objs.reduce((s, o) => s + o.storedBytes, 0);
  return (
    `${count(objs.length, 'file')} (${formatBytes(bytes)} stored: ${count(n('segment'), 'segment')}, ${count(n('partial'), 'partial')}, ` +
    `${count(n('backup'), 'backup label')}), ${objs[0]!.fileName} .. ${objs[objs.length - 1]!.fileName}`
  );
}

export function expirePlanJson(p: ExpirePlan, outcome: ExpireOutcome | null, dryRun: boolean): Record<string, unknown> {
  const d = (x: BackupDecision): Record<string, unknown> => ({ name: x.backup.name, status: x.backup.status, reason: x.reason });
  return {
    archive: p.archive,
    policy: p.policy,
    dryRun,
    keep: p.backups.keep.map(d),
    expire: p.backups.expire.map(d),
    leftovers: p.backups.leftovers.map(d),
    untouched: p.backups.untouched.map(d),
    wal: {
      delete: p.wal.delete.map((o) => ({ name: o.fileName, kind: o.kind, timeline: o.timeline, key: o.key, storedBytes: o.storedBytes })),
      kept: p.wal.kept,
      postponed: p.walPostponed,
    },
    historyProblems: p.historyProblems,
    outcome,
  };
}

export function renderExpirePlan(p: ExpirePlan): string {
  const policy =
    'retainFull' in p.policy ? `keep the ${p.policy.retainFull} newest full backups` : `keep ${p.policy.retainDays} days of recovery`;
  const lines = [`archive: ${p.archive}`, `policy: ${policy} (backups ordered by stop LSN, then stop time)`];
  for (const k of p.backups.keep) lines.push(`keep:    ${k.backup.name} (stop ${k.backup.record!.endLsn}): ${k.reason}`);
  for (const e of p.backups.expire) lines.push(`delete:  ${e.backup.name} (stop ${e.backup.record!.endLsn}): ${e.reason}`);
  for (const l of p.backups.leftovers) lines.push(`delete:  ${l.backup.name} (leftover of a failed backup-push: ${l.reason})`);
  for (const u of p.backups.untouched) lines.push(`leave:   ${u.backup.name}: ${u.reason}`);
  if (p.backups.keep.length === 0) lines.push('no complete backups: nothing is expired, no WAL is deleted');
  lines.push(p.walPostponed ? `WAL: nothing deleted: ${p.walPostponed}` : `WAL to delete: ${walSpan(p.wal.delete)}`);
  for (const k of p.wal.kept) lines.push(`kept: ${k.fileName}: ${k.reason}`);
  for (const h of p.historyProblems) lines.push(`warning: ${h} (its timelines' WAL is kept)`);
  return lines.join('\n');
}

export function renderExpireOutcome(o: ExpireOutcome): string {
  const text =
    `deleted ${count(o.backupsDeleted.length, 'backup')} and ${count(o.leftoversDeleted.length, 'leftover')} ` +
    `(${count(o.backupObjects, 'object')}), ${count(o.walDeleted, 'WAL file')}; ${formatBytes(o.storedBytes)} freed`;
  return o.interrupted ? `interrupted: ${text}. Run the same command again to finish.` : text;
}

export function renderBackupDelete(p: BackupDeletePlan, done: readonly BackupDeleteOutcome[] | null): string {
  const what = (b: BackupEntry): string => `${b.name} (${b.status}, ${count(b.objects.length, 'object')}, ${formatBytes(b.storedBytes)})`;
  const lines = [`archive: ${p.archive}`];
  const all = [...p.dependents, p.backup];
  if (!done) {
    for (const d of p.dependents) lines.push(`would delete backup ${what(d)}: it needs ${p.backup.name}`);
    lines.push(`would delete backup ${what(p.backup)}`, 'dry run: nothing deleted');
    return lines.join('\n');
  }
  done.forEach((o, i) => {
    lines.push(`deleted backup ${what(all[i]!)}: backup.json first, then ${count(o.objects - 1, 'other object')}`);
  });
  lines.push("its WAL stays until 'walvault expire' (or wal-delete) removes what no kept backup needs");
  return lines.join('\n');
}
