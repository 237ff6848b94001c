/**
 * Backup names: `<UTC start, YYYYMMDDTHHMMSS>F` for a full backup, `...I` for an incremental one
 * (issue 13). Readable and unique per second; never used for ordering (retention orders by stop LSN
 * and time, see wal-g#636 where name order deleted the newest backups after a timeline reset).
 */
import { UsageError } from '../common/errors.js';

export type BackupType = 'full' | 'incremental';

const NAME_RE = /^(\d{8})T(\d{6})([FI])$/;

export function backupName(start: Date, type: BackupType): string {
  const iso = start.toISOString(); // 2026-12-02T00:45:12.345Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
  return `${stamp}${type === 'full' ? 'F' : 'I'}`;
}

export function isBackupName(text: string): boolean {
  return NAME_RE.test(text);
}

/** The name as typed on the command line: a backup name, or a clear usage error. */
export function parseBackupName(text: string): string {
  if (!isBackupName(text)) {
    throw new UsageError(`unable to use backup name '${text}': expected a name like 20261202T004512F (see 'walvault backup-list')`);
  }
  return text;
}

export function typeOfBackupName(name: string): BackupType {
  return name.endsWith('I') ? 'incremental' : 'full';
}
