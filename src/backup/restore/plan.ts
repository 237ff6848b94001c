/**
 * Pure planning for `walvault restore`: the recovery target from the flags, and which complete
 * backup can reach it. No I/O here; the orchestrator (restore.ts) feeds in the records it listed.
 */
import { UsageError } from '../../common/errors.js';
import { compareLsn, parseLsn, type Lsn } from '../../segment/lsn.js';
import type { BackupRecord } from '../record.js';

export type RecoveryTarget =
  | { readonly kind: 'latest' }
  | { readonly kind: 'immediate' }
  | { readonly kind: 'time'; readonly text: string; readonly at: Date }
  | { readonly kind: 'lsn'; readonly text: string; readonly lsn: Lsn }
  | { readonly kind: 'xid'; readonly xid: string }
  | { readonly kind: 'name'; readonly name: string };

export type TargetAction = 'promote' | 'pause' | 'shutdown';
export type TargetTimeline = 'latest' | 'current' | number;

export interface TargetFlags {
  readonly targetTime?: string | undefined;
  readonly targetLsn?: string | undefined;
  readonly targetXid?: string | undefined;
  readonly targetName?: string | undefined;
  readonly target?: string | undefined;
}

/**
 * A time PostgreSQL and we read the same way: ISO 8601 or PostgreSQL's `YYYY-MM-DD HH:MM:SS[.f]`
 * form, always with a zone (`Z`, `+01`, `+01:00`). Without one PostgreSQL would read it in the
 * restored server's `timezone` and we could not choose the backup for it; so it is refused.
 */
export function parseTargetTime(text: string): Date {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)$/i.exec(text.trim());
  if (!m) {
    throw new UsageError(
      `unable to use recovery target time '${text}': expected a time with a zone, e.g. 2026-12-02T01:30:00Z or '2026-12-02 01:30:00+01'`,
    );
  }
  let zone = m[3]!.toUpperCase();
  if (/^[+-]\d{2}$/.test(zone)) zone += ':00';
  else if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  // Date keeps milliseconds: finer digits are cut, which only matters for a target inside the same ms.
  const clock = m[2]!.replace(/(\.\d{3})\d+$/, '$1');
  const at = new Date(`${m[1]}T${clock}${zone}`);
  if (Number.isNaN(at.getTime())) throw new UsageError(`unable to use recovery target time '${text}': not a valid date`);
  return at;
}

/** At most one target; none means "replay all archived WAL" (latest). */
export function parseTarget(flags: TargetFlags): RecoveryTarget {
  const given = (['targetTime', 'targetLsn', 'targetXid', 'targetName', 'target'] as const).filter((k) => flags[k] !== undefined);
  if (given.length > 1) {
    throw new UsageError(
      `unable to plan restore: give one recovery target, not ${given.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(' and ')}`,
    );
  }
  if (flags.targetTime !== undefined) return { kind: 'time', text: flags.targetTime, at: parseTargetTime(flags.targetTime) };
  if (flags.targetLsn !== undefined) {
    let lsn: Lsn;
    try {
      lsn = parseLsn(flags.targetLsn);
    } catch {
      throw new UsageError(`unable to use recovery target LSN '${flags.targetLsn}': expected an LSN like 16/B374D848`);
    }
    return { kind: 'lsn', text: flags.targetLsn, lsn };
  }
  if (flags.targetXid !== undefined) {
    if (!/^\d+$/.test(flags.targetXid) || BigInt(flags.targetXid) === 0n) {
      throw new UsageError(`unable to use recovery target xid '${flags.targetXid}': expected a transaction id (a positive number)`);
    }
    return { kind: 'xid', xid: flags.targetXid };
  }
  if (flags.targetName !== undefined) {
    if (flags.targetName === '' || flags.targetName.length > 63) {
      throw new UsageError(`unable to use recovery target name '${flags.targetName}': a restore point name has 1 to 63 characters`);
    }
    return { kind: 'name', name: flags.targetName };
  }
  if (flags.target !== undefined) {
    if (flags.target !== 'immediate')
      throw new UsageError(`unable to use recovery target '${flags.target}': the only value is 'immediate'`);
    return { kind: 'immediate' };
  }
  return { kind: 'latest' };
}

export function parseTargetAction(text: string | undefined): TargetAction | undefined {
  if (text === undefined) return undefined;
  if (text === 'promote' || text === 'pause' || text === 'shutdown') return text;
  throw new UsageError(`unable to use recovery target action '${text}': expected promote, pause or shutdown`);
}

export function parseTargetTimeline(text: string | undefined): TargetTimeline | undefined {
  if (text === undefined) return undefined;
  if (text === 'latest' || text === 'current') return text;
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 0xffffffff) return Number(text);
  throw new UsageError(`unable to use recovery target timeline '${text}': expected latest, current or a timeline id`);
}

/** Newest first: by end LSN, then stop time (never by name, see names.ts). */
export function newestFirst(records: readonly BackupRecord[]): BackupRecord[] {
  return [...records].sort((a, b) => {
    const byLsn = compareLsn(parseLsn(b.endLsn), parseLsn(a.endLsn));
    return byLsn !== 0 ? byLsn : Date.parse(b.stopTime) - Date.parse(a.stopTime);
  });
}

/**
 * Why `record` cannot reach `target`, or undefined when it can. Only time and LSN targets can be
 * judged from the record: an xid or a restore point name is found by PostgreSQL during replay (a
 * target before the backup's end makes PostgreSQL stop with "recovery ended before configured
 * recovery target was reached" or refuse the stop point as before the consistent point).
 */
export function unreachableReason(record: BackupRecord, target: RecoveryTarget, timeline?: TargetTimeline): string | undefined {
  if (typeof timeline === 'number' && record.endTimeline > timeline) {
    return `the backup ended on timeline ${record.endTimeline}, after target timeline ${timeline}`;
  }
  if (target.kind === 'time' && target.at.getTime() <= Date.parse(record.stopTime)) {
    return `target time ${target.at.toISOString()} is not after the backup's end (${record.stopTime})`;
  }
  if (target.kind === 'lsn' && compareLsn(target.lsn, parseLsn(record.endLsn)) < 0) {
    return `target LSN ${target.text} is before the backup's end LSN ${record.endLsn}`;
  }
  return undefined;
}

/**
 * The backup to restore: the named one (which must reach the target), or the newest complete one
 * that can. `latest` as a name means the newest that can reach the target.
 */
export function chooseBackup(
  records: readonly BackupRecord[],
  target: RecoveryTarget,
  opts: { name?: string | undefined; timeline?: TargetTimeline | undefined } = {},
): BackupRecord {
  const name = opts.name === 'latest' ? undefined : opts.name;
  if (name !== undefined) {
    const record = records.find((r) => r.name === name);
    if (!record) throw new UsageError(`unable to restore backup '${name}': no complete backup of that name (see 'walvault backup-list')`);
    const why = unreachableReason(record, target, opts.timeline);
    if (why) throw new UsageError(`unable to restore backup '${name}' to the target: ${why}`);
    return record;
  }
  if (records.length === 0) throw new UsageError("unable to restore: the archive holds no complete backup (see 'walvault backup-list')");
  const ordered = newestFirst(records);
  const fit = ordered.find((r) => unreachableReason(r, target, opts.timeline) === undefined);
  if (!fit) {
    const oldest = ordered[ordered.length - 1]!;
    throw new UsageError(
      `unable to restore to the target: no complete backup reaches it (oldest '${oldest.name}': ${unreachableReason(oldest, target, opts.timeline)})`,
    );
  }
  return fit;
}
