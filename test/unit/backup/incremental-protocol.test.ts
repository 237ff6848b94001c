import { describe, expect, it } from 'vitest';
import { ReplicationError, UsageError } from '../../../src/common/errors.js';
import { baseBackupCommand } from '../../../src/postgres/replication/base-backup.js';
import {
  classifyIncrementalError,
  isIncrementalUnavailable,
  type IncrementalUnavailableError,
} from '../../../src/backup/incremental/errors.js';

/** What node-postgres throws for a server ERROR: an Error with severity and SQLSTATE code. */
function serverError(message: string, code = '55000'): Error {
  return Object.assign(new Error(message), { severity: 'ERROR', code });
}
/** As connection.ts wraps it. */
const wrapped = (e: Error): ReplicationError => new ReplicationError(`unable to take base backup 'b': ${e.message}`, { cause: e });

describe('BASE_BACKUP (INCREMENTAL)', () => {
  it('adds INCREMENTAL on PostgreSQL 17', () => {
    expect(baseBackupCommand({ label: 'b', checkpoint: 'fast', serverVersionNum: 170002, incremental: true })).toBe(
      "BASE_BACKUP (LABEL 'b', PROGRESS, CHECKPOINT 'fast', WAIT false, INCREMENTAL, MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', TARGET 'client')",
    );
    expect(baseBackupCommand({ label: 'b', checkpoint: 'fast', serverVersionNum: 170002 })).not.toMatch(/INCREMENTAL/);
  });
  it('refuses it before 17', () => {
    expect(() => baseBackupCommand({ label: 'b', checkpoint: 'fast', serverVersionNum: 160004, incremental: true })).toThrow(UsageError);
  });
});

describe('classifyIncrementalError', () => {
  it.each([
    ['incremental backups cannot be taken unless WAL summarization is enabled', 'summarize-wal-off'],
    [
      'WAL summaries are required on timeline 1 from 0/2000028 to 0/4000060, but no summaries for that timeline and LSN range exist',
      'summaries-missing',
    ],
    [
      'WAL summaries are required on timeline 1 from 0/2000028 to 0/4000060, but the summaries for that timeline and LSN range are incomplete',
      'summaries-missing',
    ],
    ['WAL summarization is not progressing', 'summaries-missing'],
    ['backup manifest version 1 does not support incremental backup', 'parent-unsupported'],
    ['system identifier in backup manifest is 42, but database system identifier is 7446', 'other-system'],
    ["timeline 2 found in manifest, but not in this server's history", 'timeline'],
    ['manifest requires WAL from final timeline 1 ending at 0/5000100, but this backup starts at 0/5000028', 'timeline'],
    ['ein übersetzter Text', 'other'],
  ])('%s -> %s', (message, reason) => {
    const err = classifyIncrementalError(wrapped(serverError(message)), 'b');
    expect(isIncrementalUnavailable(err)).toBe(true);
    expect((err as IncrementalUnavailableError).reason).toBe(reason);
    expect((err as IncrementalUnavailableError).message).toMatch(/^unable to take incremental backup 'b': /);
    expect((err as IncrementalUnavailableError).message).toContain(message);
    expect((err as IncrementalUnavailableError).retryable).toBe(false);
  });

  it('leaves other failures alone', () => {
    const lost = new ReplicationError('unable to take base backup: Connection terminated unexpectedly');
    expect(classifyIncrementalError(lost, 'b')).toBe(lost);
    const checksum = wrapped(serverError('checksum verification failure during base backup', 'XX001'));
    expect(classifyIncrementalError(checksum, 'b')).toBe(checksum);
  });
});
