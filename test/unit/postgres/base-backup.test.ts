import { describe, expect, it } from 'vitest';
import {
  baseBackupCommand,
  checksumFailureFiles,
  parseCopyStreamMessage,
  parsePositionResult,
  parseTablespaceResult,
  tablespaceOfArchive,
} from '../../../src/postgres/replication/base-backup.js';
import { ReplicationError, UsageError } from '../../../src/common/errors.js';

/** Payloads written byte by byte from the protocol documentation ("Streaming Replication Protocol"). */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

describe('baseBackupCommand', () => {
  it('uses the option list on PostgreSQL 15 and newer', () => {
    expect(baseBackupCommand({ label: 'walvault 20261202T004512F', checkpoint: 'fast', serverVersionNum: 150004 })).toBe(
      "BASE_BACKUP (LABEL 'walvault 20261202T004512F', PROGRESS, CHECKPOINT 'fast', WAIT false, " +
        "MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', TARGET 'client')",
    );
    expect(baseBackupCommand({ label: 'x', checkpoint: 'spread', maxRateKbps: 32, serverVersionNum: 170002 })).toBe(
      "BASE_BACKUP (LABEL 'x', PROGRESS, CHECKPOINT 'spread', WAIT false, MAX_RATE 32, " +
        "MANIFEST 'yes', MANIFEST_CHECKSUMS 'SHA256', TARGET 'client')",
    );
  });

  it('uses the keyword syntax on PostgreSQL 13 and 14', () => {
    expect(baseBackupCommand({ label: 'b', checkpoint: 'fast', maxRateKbps: 1_048_576, serverVersionNum: 140010 })).toBe(
      "BASE_BACKUP LABEL 'b' PROGRESS FAST NOWAIT MAX_RATE 1048576 MANIFEST 'yes' MANIFEST_CHECKSUMS 'SHA256'",
    );
    expect(baseBackupCommand({ label: 'b', checkpoint: 'spread', serverVersionNum: 130000 })).toBe(
      "BASE_BACKUP LABEL 'b' PROGRESS NOWAIT MANIFEST 'yes' MANIFEST_CHECKSUMS 'SHA256'",
    );
    expect(baseBackupCommand({ label: 'b', checkpoint: 'spread', serverVersionNum: 149999 })).toMatch(/^BASE_BACKUP LABEL/);
  });

  it("doubles quotes in the label (the replication scanner knows only '')", () => {
    expect(baseBackupCommand({ label: "it's a 'test' \\n", checkpoint: 'fast', serverVersionNum: 150000 })).toContain(
      "LABEL 'it''s a ''test'' \\n',",
    );
  });

  it('refuses labels that would forge backup_label lines, empty and too long ones', () => {
    for (const label of ['a\nSTART TIMELINE: 9', 'tab\there', 'nul\u0000', '', 'del\u007f']) {
      expect(() => baseBackupCommand({ label, checkpoint: 'fast', serverVersionNum: 150000 })).toThrow(UsageError);
    }
    expect(() => baseBackupCommand({ label: 'é'.repeat(512), checkpoint: 'fast', serverVersionNum: 150000 })).toThrow(
      /longer than 1023 bytes/,
    );
    expect(baseBackupCommand({ label: 'a'.repeat(1023), checkpoint: 'fast', serverVersionNum: 150000 })).toContain('a'.repeat(1023));
  });

  it('refuses rates PostgreSQL would refuse and servers older than 13', () => {
    for (const maxRateKbps of [31, 1_048_577, 100.5, Number.NaN]) {
      expect(() => baseBackupCommand({ label: 'x', checkpoint: 'fast', maxRateKbps, serverVersionNum: 150000 })).toThrow(
        /unable to use max rate '.*' kB\/s: PostgreSQL accepts 32 to 1048576/,
      );
    }
    expect(() => baseBackupCommand({ label: 'x', checkpoint: 'fast', serverVersionNum: 120017 })).toThrow(/PostgreSQL 13 or newer/);
  });
});

describe('parseCopyStreamMessage', () => {
  it("parses 'n' with archive name and tablespace path", () => {
    expect(parseCopyStreamMessage(hex('6E 626173652E74617200 00'))).toEqual({ kind: 'archive', name: 'base.tar', tablespacePath: '' });
    expect(parseCopyStreamMessage(hex('6E 31363338352E74617200 2F7372762F747300'))).toEqual({
      kind: 'archive',
      name: '16385.tar',
      tablespacePath: '/srv/ts',
    });
  });

  it("refuses 'n' without both terminators or with trailing bytes", () => {
    for (const h of ['6E', '6E 626173652E746172', '6E 626173652E74617200', '6E 626173652E74617200 00 41']) {
      expect(() => parseCopyStreamMessage(hex(h))).toThrow(/expected two NUL-terminated strings/);
    }
  });

  it("parses 'd' as a view of the rest, also empty", () => {
    const buf = hex('64 DEADBEEF');
    const msg = parseCopyStreamMessage(buf);
    expect(msg).toEqual({ kind: 'data', data: hex('DEADBEEF') });
    expect(msg.kind === 'data' && msg.data.buffer).toBe(buf.buffer);
    expect(parseCopyStreamMessage(hex('64'))).toEqual({ kind: 'data', data: Buffer.alloc(0) });
  });

  it("parses 'p' as a big-endian uint64 and refuses bad lengths and unsafe values", () => {
    expect(parseCopyStreamMessage(hex('70 0000000123456789'))).toEqual({ kind: 'progress', bytesDone: 0x123456789 });
    expect(parseCopyStreamMessage(hex('70 001FFFFFFFFFFFFF'))).toEqual({ kind: 'progress', bytesDone: Number.MAX_SAFE_INTEGER });
    expect(() => parseCopyStreamMessage(hex('70 00000001'))).toThrow(/5 bytes, expected 9/);
    expect(() => parseCopyStreamMessage(hex('70 0020000000000000'))).toThrow(/out of range/);
  });

  it("parses 'm' and refuses it with a payload", () => {
    expect(parseCopyStreamMessage(hex('6D'))).toEqual({ kind: 'manifest' });
    expect(() => parseCopyStreamMessage(hex('6D 00'))).toThrow(/2 bytes, expected 1/);
  });

  it('refuses empty and unknown messages', () => {
    expect(() => parseCopyStreamMessage(Buffer.alloc(0))).toThrow(ReplicationError);
    expect(() => parseCopyStreamMessage(hex('77 00'))).toThrow(/unknown type 0x77/);
  });
});

describe('tablespaceOfArchive', () => {
  it('maps base.tar to the data directory and <oid>.tar to the oid', () => {
    expect(tablespaceOfArchive('base.tar')).toBeNull();
    expect(tablespaceOfArchive('16385.tar')).toBe(16385);
    expect(tablespaceOfArchive('4294967295.tar')).toBe(4294967295);
  });

  it('refuses compressed, path-like and out-of-range names', () => {
    for (const name of ['base.tar.gz', '16385.tar.zst', '../1.tar', '0.tar', '4294967296.tar', '01.tar', 'x.tar', '']) {
      expect(() => tablespaceOfArchive(name)).toThrow(ReplicationError);
    }
  });
});

describe('result sets', () => {
  it('parses the start and end positions (both LSN spellings)', () => {
    expect(parsePositionResult({ columns: ['recptr', 'tli'], rows: [['0/2000028', '1']] }, 'start')).toEqual({
      lsn: 0x2000028n,
      timeline: 1,
    });
    expect(parsePositionResult({ columns: ['recptr', 'tli'], rows: [['16/0B374D84', '7']] }, 'end')).toEqual({
      lsn: 0x160b374d84n,
      timeline: 7,
    });
  });

  it('refuses anything else as a position', () => {
    const bad = [
      { columns: ['recptr', 'tli'], rows: [] },
      {
        columns: ['recptr', 'tli'],
        rows: [
          ['0/1', '1'],
          ['0/2', '1'],
        ],
      },
      { columns: ['x', 'tli'], rows: [['0/1', '1']] },
      { columns: ['recptr', 'tli'], rows: [['0/1', null]] },
      { columns: ['recptr', 'tli'], rows: [['0/1', '-1']] },
    ];
    for (const rs of bad) expect(() => parsePositionResult(rs, 'start')).toThrow(/unable to read base backup start position/);
    expect(() => parsePositionResult({ columns: ['recptr', 'tli'], rows: [['0/1', '0']] }, 'end')).toThrow();
  });

  it('parses tablespace rows with sizes in kB and the data directory last', () => {
    const rs = {
      columns: ['spcoid', 'spclocation', 'size'],
      rows: [
        ['16385', '/srv/ts1', '12'],
        [null, null, '30000'],
      ],
    };
    expect(parseTablespaceResult(rs)).toEqual([
      { oid: 16385, location: '/srv/ts1', sizeBytes: 12 * 1024 },
      { oid: null, location: null, sizeBytes: 30000 * 1024 },
    ]);
    expect(parseTablespaceResult({ columns: ['spcoid', 'spclocation', 'size'], rows: [[null, null, null]] })).toEqual([
      { oid: null, location: null, sizeBytes: null },
    ]);
  });

  it('refuses tablespace results without the data directory last, bad numbers or columns', () => {
    const cols = ['spcoid', 'spclocation', 'size'];
    const bad = [
      { columns: cols, rows: [] },
      {
        columns: cols,
        rows: [
          [null, null, '1'],
          ['16385', '/x', '1'],
        ],
      },
      {
        columns: cols,
        rows: [
          [null, null, '1'],
          [null, null, '1'],
        ],
      },
      {
        columns: cols,
        rows: [
          ['x', '/x', '1'],
          [null, null, '1'],
        ],
      },
      { columns: cols, rows: [[null, null, '-1']] },
      { columns: ['spcoid', 'size'], rows: [[null, '1']] },
    ];
    for (const rs of bad) expect(() => parseTablespaceResult(rs)).toThrow(/unable to read base backup tablespaces/);
  });
});

describe('checksumFailureFiles', () => {
  it('names each file once, in order, from the WARNING texts', () => {
    const warnings = [
      'checksum verification failed in file "./base/5/16384", block 0: calculated 3A1B but expected 91C2',
      'checksum verification failed in file "./base/5/16384", block 1: calculated 1111 but expected 2222',
      'file "./base/5/16384" has a total of 2 checksum verification failures',
      'checksum verification failed in file "pg_tblspc/16385/PG_15_202209061/5/16390", block 3: calculated 1 but expected 2',
      'a checksum warning without a quoted name',
    ];
    expect(checksumFailureFiles(warnings)).toEqual([
      'base/5/16384',
      'pg_tblspc/16385/PG_15_202209061/5/16390',
      'a checksum warning without a quoted name',
    ]);
    expect(checksumFailureFiles([])).toEqual([]);
  });

  it('ignores other WARNINGs when checksum ones are there, and keeps translated ones', () => {
    expect(checksumFailureFiles(['skipping special file "./sock"', 'checksum verification failed in file "./base/1/2", block 0'])).toEqual([
      'base/1/2',
    ]);
    expect(checksumFailureFiles(['Prüfsummenüberprüfung fehlgeschlagen in Datei "./base/1/2", Block 0'])).toEqual(['base/1/2']);
  });
});
