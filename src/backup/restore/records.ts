/**
 * The complete backups of the archive, as restore sees them: every intact `backups/<name>/backup.json`.
 * (backup-list's inventory also reports running and failed ones; restore needs only these.)
 */
import type { ArchiveContext } from '../../archive/context.js';
import { describeCause } from '../../common/errors.js';
import { BACKUPS_PREFIX, RECORD_LEAF, parseBackupKey, recordKey } from '../layout.js';
import { decodeBackupRecord, type BackupRecord } from '../record.js';

export interface CompleteBackups {
  readonly records: BackupRecord[];
  /** Names whose backup.json could not be read or is damaged: never restored, reported. */
  readonly unreadable: { readonly name: string; readonly reason: string }[];
}

export async function listCompleteBackups(ctx: ArchiveContext): Promise<CompleteBackups> {
  const names: string[] = [];
  for await (const info of ctx.storage.list(BACKUPS_PREFIX)) {
    const parsed = parseBackupKey(info.key);
    if (parsed && parsed.leaf === RECORD_LEAF) names.push(parsed.name);
  }
  const records: BackupRecord[] = [];
  const unreadable: { name: string; reason: string }[] = [];
  for (const name of names) {
    try {
      const key = recordKey(name);
      const bytes = await ctx.storage.getBuffer(key, ctx.signal ? { signal: ctx.signal } : {});
      records.push(decodeBackupRecord(bytes, key, name));
    } catch (err) {
      unreadable.push({ name, reason: describeCause(err) });
    }
  }
  return { records, unreadable };
}
