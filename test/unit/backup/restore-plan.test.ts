import { describe, expect, it } from 'vitest';
import { chooseBackup, parseTarget, parseTargetTime, parseTargetTimeline, type RecoveryTarget } from '../../../src/backup/restore/plan.js';
import { confQuote, recoverySettings, restoreCommandFor, rewriteAutoConf, shellQuote } from '../../../src/backup/restore/recovery.js';
import { parseTablespaceMap, planTablespaces, tablespaceMapText } from '../../../src/backup/restore/tablespaces.js';
import type { BackupRecord } from '../../../src/backup/record.js';
import type { CatalogEntry } from '../../../src/backup/catalog.js';

function rec(name: string, endLsn: string, stopTime: string, extra: Partial<BackupRecord> = {}): BackupRecord {
  return { name, endLsn, stopTime, endTimeline: 1, tablespaces: [], ...extra } as unknown as BackupRecord;
}

// Three backups; names deliberately out of time order (a clock reset): choice must follow LSN and time.
const A = rec('20261201T100000F', '0/3000100', '2026-12-01T10:00:05.000Z');
const B = rec('20261201T090000F', '0/5000100', '2026-12-01T11:00:05.000Z');
const C = rec('20261201T120000F', '0/7000100', '2026-12-01T12:00:05.000Z');

describe('restore target parsing', () => {
  it('accepts one target and reads times with a zone', () => {
    expect(parseTarget({}).kind).toBe('latest');
    expect(parseTarget({ target: 'immediate' }).kind).toBe('immediate');
    expect(parseTargetTime('2026-12-02 01:30:00+01').toISOString()).toBe('2026-12-02T00:30:00.000Z');
    expect(parseTargetTime('2026-12-02T01:30:00.123456Z').toISOString()).toBe('2026-12-02T01:30:00.123Z');
    expect(parseTargetTime('2026-12-02 01:30:00.5-0230').toISOString()).toBe('2026-12-02T04:00:00.500Z');
    const lsn = parseTarget({ targetLsn: '16/B374D848' });
    expect(lsn.kind === 'lsn' && lsn.lsn).toBe(0x16b374d848n);
  });

  it.each([
    [{ targetTime: '2026-12-02 01:30:00' }, /with a zone/],
    [{ targetLsn: 'nope' }, /expected an LSN/],
    [{ targetXid: '0' }, /transaction id/],
    [{ targetName: 'x'.repeat(64) }, /1 to 63/],
    [{ target: 'soon' }, /only value is 'immediate'/],
    [{ targetXid: '5', targetName: 'p' }, /give one recovery target, not --target-xid and --target-name/],
  ])('refuses %j', (flags, message) => {
    expect(() => parseTarget(flags)).toThrow(message);
  });

  it('reads target timelines', () => {
    expect(parseTargetTimeline('latest')).toBe('latest');
    expect(parseTargetTimeline('3')).toBe(3);
    expect(() => parseTargetTimeline('0')).toThrow(/latest, current or a timeline id/);
  });
});

describe('choosing the backup', () => {
  const time = (t: string): RecoveryTarget => parseTarget({ targetTime: t });
  it('takes the newest for no target, immediate, xid and name', () => {
    for (const t of [
      parseTarget({}),
      parseTarget({ target: 'immediate' }),
      parseTarget({ targetXid: '9' }),
      parseTarget({ targetName: 'p' }),
    ]) {
      expect(chooseBackup([A, B, C], t).name).toBe(C.name);
    }
  });
  it('takes the newest that stopped before a time target', () => {
    expect(chooseBackup([C, A, B], time('2026-12-01T11:30:00Z')).name).toBe(B.name);
    expect(chooseBackup([C, A, B], time('2026-12-01T10:00:06Z')).name).toBe(A.name);
    expect(() => chooseBackup([A, B], time('2026-12-01T10:00:05Z'))).toThrow(/no complete backup reaches it/);
  });
  it('takes the newest whose end LSN is not after an LSN target', () => {
    expect(chooseBackup([A, B, C], parseTarget({ targetLsn: '0/5000100' })).name).toBe(B.name);
    expect(chooseBackup([A, B, C], parseTarget({ targetLsn: '0/6FFFFFF' })).name).toBe(B.name);
    expect(() => chooseBackup([A, B, C], parseTarget({ targetLsn: '0/1000000' }))).toThrow(
      /oldest '20261201T100000F': target LSN 0\/1000000 is before the backup's end LSN 0\/3000100/,
    );
  });
  it('skips backups that ended on a later timeline than a numeric target timeline', () => {
    const D = rec('20261201T130000F', '0/9000100', '2026-12-01T13:00:05.000Z', { endTimeline: 2 });
    expect(chooseBackup([A, D], parseTarget({}), { timeline: 1 }).name).toBe(A.name);
    expect(chooseBackup([A, D], parseTarget({}), { timeline: 'latest' }).name).toBe(D.name);
  });
  it('checks a named backup against the target, and refuses unknown names', () => {
    expect(chooseBackup([A, B, C], parseTarget({}), { name: A.name }).name).toBe(A.name);
    expect(chooseBackup([A, B, C], parseTarget({}), { name: 'latest' }).name).toBe(C.name);
    expect(() => chooseBackup([A, B, C], time('2026-12-01T11:00:00Z'), { name: C.name })).toThrow(
      "unable to restore backup '20261201T120000F' to the target: target time 2026-12-01T11:00:00.000Z is not after the backup's end (2026-12-01T12:00:05.000Z)",
    );
    expect(() => chooseBackup([A], parseTarget({}), { name: '20261201T000000F' })).toThrow(/no complete backup of that name/);
    expect(() => chooseBackup([], parseTarget({}))).toThrow(/holds no complete backup/);
  });
});

describe('recovery settings', () => {
  it('replaces stale recovery settings and keeps every other line', () => {
    const old = [
      '# Do not edit this file manually!',
      "work_mem = '64MB'",
      "restore_command = 'cp /old/%f %p'",
      "recovery_target_time = '2020-01-01'",
      "primary_conninfo = 'host=x'",
      "RECOVERY_TARGET_ACTION = 'pause'",
      '',
    ].join('\n');
    const out = rewriteAutoConf(
      old,
      recoverySettings({ target: parseTarget({ targetXid: '77' }), restoreCommand: "a 'b' %f" }),
      'walvault',
    );
    expect(out).toBe(
      [
        '# Do not edit this file manually!',
        "work_mem = '64MB'",
        "primary_conninfo = 'host=x'",
        '# walvault',
        "restore_command = 'a ''b'' %f'",
        "recovery_target_xid = '77'",
        "recovery_target_action = 'promote'",
        '',
      ].join('\n'),
    );
  });
  it('writes no action without a target, and the timeline when asked', () => {
    expect(recoverySettings({ target: parseTarget({}), timeline: 'current', restoreCommand: 'x' })).toEqual([
      ['restore_command', 'x'],
      ['recovery_target_timeline', 'current'],
    ]);
    expect(recoverySettings({ target: parseTarget({ target: 'immediate' }), action: 'pause', restoreCommand: 'x' })).toEqual([
      ['restore_command', 'x'],
      ['recovery_target', 'immediate'],
      ['recovery_target_action', 'pause'],
    ]);
  });
  it('quotes for sh and for postgresql.conf', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(confQuote("a\\b'c")).toBe("'a\\\\b''c'");
    expect(restoreCommandFor({ configFile: '/d/w.conf', launcher: '/opt/wv/bin/wal-fetch', node: '/usr/bin/node' })).toBe(
      "WALVAULT_CONFIG='/d/w.conf' WALVAULT_NODE='/usr/bin/node' '/opt/wv/bin/wal-fetch' %f %p",
    );
  });
});

describe('tablespace mapping', () => {
  const record = rec('20261201T100000F', '0/3000100', '2026-12-01T10:00:05.000Z', {
    tablespaces: [{ oid: 16400, location: '/srv/ts1', bytes: 10 }],
  });
  const link = { type: 'link', tablespace: null, path: 'pg_tblspc/16401', target: '/srv/ts2' } as CatalogEntry;
  it('takes locations from the record and the links, mapped ones from --tablespace-map', () => {
    const plans = planTablespaces(record, [link], parseTablespaceMap(['16401=/new/ts2/']));
    expect(plans).toEqual([
      { oid: 16400, original: '/srv/ts1', location: '/srv/ts1' },
      { oid: 16401, original: '/srv/ts2', location: '/new/ts2' },
    ]);
    expect(tablespaceMapText([...plans, { oid: 1, original: 'x', location: '/a\\b' }])).toBe('16400 /srv/ts1\n16401 /new/ts2\n1 /a\\\\b\n');
  });
  it('refuses bad, duplicate and unknown mappings, and two tablespaces in one place', () => {
    expect(() => parseTablespaceMap(['16400=rel'])).toThrow(/OID=\/absolute\/directory/);
    expect(() => parseTablespaceMap(['1=/a', '1=/b'])).toThrow(/mapped twice/);
    expect(() => planTablespaces(record, [], parseTablespaceMap(['9=/a']))).toThrow(/has no such tablespace \(it has: 16400\)/);
    expect(() => planTablespaces(record, [link], parseTablespaceMap(['16401=/srv/ts1']))).toThrow(/both would go to '\/srv\/ts1'/);
  });
});
