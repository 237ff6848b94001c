import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataDirOfWalPath, detectRecoveryMode, isDataDir, readSystemIdentifier, restoreDataDir } from '../../../src/postgres/pgdata.js';

const root = mkdtempSync(join(tmpdir(), 'walvault-pgdata-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A directory with just the files these functions look at, written by hand. */
function dataDir(name: string, opts: { systemId?: bigint; signals?: string[] } = {}): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'pg_wal'), { recursive: true });
  mkdirSync(join(dir, 'global'));
  writeFileSync(join(dir, 'PG_VERSION'), '15\n');
  if (opts.systemId !== undefined) {
    const control = Buffer.alloc(8192);
    control.writeBigUInt64LE(opts.systemId, 0);
    writeFileSync(join(dir, 'global', 'pg_control'), control);
  }
  for (const s of opts.signals ?? []) writeFileSync(join(dir, s), '');
  return dir;
}

describe('data directory layout', () => {
  it('tells a data directory by PG_VERSION', () => {
    const dir = dataDir('plain');
    expect(isDataDir(dir)).toBe(true);
    expect(isDataDir(join(dir, 'pg_wal'))).toBe(false);
  });

  it('finds the data directory of %p, and none for a loose file', () => {
    const dir = dataDir('walpath');
    expect(dataDirOfWalPath(join(dir, 'pg_wal', '000000010000000000000001'))).toBe(dir);
    expect(dataDirOfWalPath(join(root, 'loose', '000000010000000000000001'))).toBeUndefined();
    expect(restoreDataDir('pg_wal/RECOVERYXLOG', dir)).toBe(dir);
    expect(restoreDataDir(undefined, dir)).toBe(dir);
    expect(restoreDataDir('/nowhere/pg_wal/RECOVERYXLOG', root)).toBeUndefined();
  });

  it('reads the system identifier from the first eight bytes of global/pg_control, little-endian', () => {
    expect(readSystemIdentifier(dataDir('control', { systemId: 7333402955829583530n }))).toBe('7333402955829583530');
    expect(readSystemIdentifier(dataDir('nocontrol'))).toBeUndefined();
    expect(readSystemIdentifier(dataDir('zero', { systemId: 0n }))).toBeUndefined();
  });

  it('lets standby.signal win over recovery.signal', () => {
    expect(detectRecoveryMode(dataDir('both', { signals: ['standby.signal', 'recovery.signal'] }))).toBe('standby');
    expect(detectRecoveryMode(dataDir('recovery', { signals: ['recovery.signal'] }))).toBe('archive-recovery');
    expect(detectRecoveryMode(dataDir('neither'))).toBe('unknown');
  });
});
