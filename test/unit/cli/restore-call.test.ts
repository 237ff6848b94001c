import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/common/errors.js';
import { loadConfig } from '../../../src/config/load.js';
import { restoreOptions } from '../../../src/cli/restore-call.js';
import { parseLsn } from '../../../src/segment/lsn.js';

// A config as the settings load it: an archive from a flag, restore-parallel from the environment.
const loaded = loadConfig({ flags: { archive: 'file:///srv/wal' }, env: { WALVAULT_RESTORE_PARALLEL: '8' } });

describe('restoreOptions', () => {
  it('restores the newest backup to its latest point, into an empty directory, by default', () => {
    const o = restoreOptions({ pgdata: '/srv/pg' }, loaded.config, loaded.sources, {});
    expect(o).toEqual({
      pgdata: '/srv/pg',
      backup: undefined,
      target: { kind: 'latest' },
      action: undefined,
      timeline: undefined,
      tablespaceMap: new Map(),
      delta: false,
      parallel: 8,
      bufferBytes: 268435456,
      archiveSettings: { archive: 'file:///srv/wal' },
      stateDir: undefined,
    });
  });

  it('types the target, its action and timeline, the tablespace map and --delta', () => {
    const o = restoreOptions(
      {
        pgdata: '/srv/pg',
        backup: 'latest',
        targetLsn: '0/3000028',
        targetAction: 'pause',
        targetTimeline: '2',
        tablespaceMap: ['16384=/srv/ts1'],
        delta: true,
      },
      loaded.config,
      loaded.sources,
      { WALVAULT_STATE_DIR: '/var/lib/walvault' },
    );
    expect(o.target).toEqual({ kind: 'lsn', text: '0/3000028', lsn: parseLsn('0/3000028') });
    expect([o.backup, o.action, o.timeline, o.delta, o.stateDir]).toEqual(['latest', 'pause', 2, true, '/var/lib/walvault']);
    expect([...o.tablespaceMap]).toEqual([[16384, '/srv/ts1']]);
  });

  const refused: ReadonlyArray<[string, Record<string, unknown>]> = [
    ['two targets', { targetLsn: '0/3000028', targetXid: '740' }],
    ['an unknown action', { targetAction: 'stop' }],
    ['a timeline that is not one', { targetTimeline: 'newest' }],
  ];
  it.each(refused)('refuses %s as a usage error, before any archive is opened', (_what, flags) => {
    expect(() => restoreOptions({ pgdata: '/srv/pg', ...flags }, loaded.config, loaded.sources, {})).toThrow(UsageError);
  });
});
