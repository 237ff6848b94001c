import { describe, expect, it } from 'vitest';
import { formatRate, progressReporter, renderBackupProgress, renderBackupSummary } from '../../../../src/cli/render/progress.js';
import { silentLogger } from '../../../../src/common/log.js';
import type { BackupRecord } from '../../../../src/backup/record.js';

const GIB = 1024 ** 3;

describe('backup-push progress', () => {
  it('draws bytes done of the estimate, rate and ETA', () => {
    expect(renderBackupProgress({ phase: 'copy', doneBytes: GIB, totalBytes: 2 * GIB }, 10_000, 10)).toBe(
      '[#####.....]  50%  1.00 GiB of 2.00 GiB  107.4 MB/s  ETA 10 s',
    );
  });

  it('keeps the bar full when files grew past the estimate', () => {
    expect(renderBackupProgress({ phase: 'copy', doneBytes: 3 * GIB, totalBytes: 2 * GIB }, 10_000, 4)).toBe(
      '[####] 100%  3.00 GiB of 2.00 GiB  322.1 MB/s  ETA -',
    );
  });

  it('names the phase outside the copy and without an estimate', () => {
    expect(renderBackupProgress({ phase: 'checkpoint', doneBytes: 0, totalBytes: null }, 1000)).toBe('waiting for the checkpoint  0 B');
    expect(renderBackupProgress({ phase: 'copy', doneBytes: 2048, totalBytes: null }, 1000)).toBe('copying  2.00 KiB  0.0 MB/s');
    expect(formatRate(5e6, 0)).toBe('- MB/s');
  });

  it('summarises a backup in one line', () => {
    const record = {
      name: '20261202T010203F',
      rawBytes: 2 * GIB,
      storedBytes: 300 * 1024 ** 2,
      files: 1234,
      startLsn: '0/5000028',
      endLsn: '0/7A3F2B8',
      endTimeline: 1,
    };
    expect(renderBackupSummary({ record: record as BackupRecord, durationMs: 20_000, leftoversRemoved: 0 })).toBe(
      'backup 20261202T010203F complete: 2.00 GiB raw, 300 MiB stored in 20 s (107.4 MB/s), 1234 files, WAL 0/5000028 to 0/7A3F2B8 (timeline 1)',
    );
  });

  it('says what an incremental reused, and why auto took a full backup instead', () => {
    const base = { rawBytes: 2 * GIB, storedBytes: 30 * 1024 ** 2, files: 12, startLsn: '0/5000028', endLsn: '0/7A3F2B8', endTimeline: 1 };
    const inc = { ...base, name: '20261202T020000I', type: 'incremental', parent: '20261202T010203F', reusedBytes: GIB };
    expect(renderBackupSummary({ record: inc as BackupRecord, durationMs: 20_000, leftoversRemoved: 0 })).toBe(
      'backup 20261202T020000I complete: incremental on 20261202T010203F, reused 1.00 GiB of 2.00 GiB, 2.00 GiB raw, 30.0 MiB stored ' +
        'in 20 s (107.4 MB/s), 12 files, WAL 0/5000028 to 0/7A3F2B8 (timeline 1)',
    );
    const full = { ...base, name: '20261202T020000F', type: 'full', parent: null };
    expect(
      renderBackupSummary({
        record: full as BackupRecord,
        durationMs: 20_000,
        leftoversRemoved: 0,
        fallback: 'unable to take incremental backup: x',
      }),
    ).toMatch(/\(timeline 1\)\nfull backup instead of incremental: unable to take incremental backup: x$/);
  });

  it('redraws a TTY line in place and clears it at the end', () => {
    const out: string[] = [];
    const r = progressReporter({ tty: true, write: (s) => out.push(s), log: silentLogger() });
    r.update({ phase: 'checkpoint', doneBytes: 0, totalBytes: null });
    r.update({ phase: 'copy', doneBytes: 10, totalBytes: 100 });
    r.update({ phase: 'copy', doneBytes: 20, totalBytes: 100 }); // within 250 ms: skipped
    r.done();
    expect(out).toHaveLength(3);
    expect(out[0]).toBe('\r\x1b[Kwaiting for the checkpoint  0 B');
    expect(out[1]).toMatch(/^\r\x1b\[K\[##\.+\]  10%  10 B of 100 B/);
    expect(out[2]).toBe('\r\x1b[K');
  });
});
