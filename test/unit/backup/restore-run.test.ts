import {
  chownSync,
  mkdtempSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  lstatSync,
  readlinkSync,
  rmSync,
  writeFileSync,
  existsSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { packKey } from '../../../src/backup/layout.js';
import { parseTarget } from '../../../src/backup/restore/plan.js';
import { runRestore, type RestoreOptions } from '../../../src/backup/restore/restore.js';
import { INCOMPLETE_MARKER } from '../../../src/backup/restore/target-dir.js';
import { silentLogger } from '../../../src/common/log.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import { writeFixtureBackup, type FixtureFile } from '../../support/backup-fixture.js';

const NAME = '20261201T100000F';
const big = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 251));

function files(tsLocation: string): FixtureFile[] {
  return [
    { path: 'backup_label', content: Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n') },
    { path: 'PG_VERSION', content: Buffer.from('17\n'), mode: 0o600, mtime: 1_700_000_000 },
    { path: 'global', type: 'dir', mtime: 1_700_000_100 },
    { path: 'base', type: 'dir' },
    { path: 'base/1', type: 'dir', mode: 0o700 },
    { path: 'base/1/1259', content: big, mtime: 1_700_000_200 },
    { path: 'base/1/empty', content: Buffer.alloc(0) },
    { path: 'base/1/small', content: Buffer.from('small file') },
    { path: 'pg_wal', type: 'dir' },
    { path: 'pg_replslot', type: 'dir' },
    { path: 'postgresql.auto.conf', content: Buffer.from("# Do not edit\nrestore_command = 'stale'\nwork_mem = '8MB'\n") },
    { path: 'pg_tblspc', type: 'dir' },
    { path: 'pg_tblspc/16400', type: 'link', target: tsLocation },
    { path: 'PG_17_1', tablespace: 16400, type: 'dir' },
    { path: 'PG_17_1/5', tablespace: 16400, type: 'dir' },
    { path: 'PG_17_1/5/16401', tablespace: 16400, content: Buffer.alloc(3000, 0x42) },
    { path: 'global/pg_control', content: Buffer.alloc(8192, 9) },
  ];
}

/** Every path under `root` (not following links) with type, mode and content, for tree comparisons. */
function tree(root: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(root, rel)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const st = lstatSync(join(root, r));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(join(root, r))}`;
    else if (st.isDirectory()) {
      out[r] = `dir ${mode}`;
      Object.assign(out, tree(root, r));
    } else out[r] = `file ${mode} ${Math.floor(st.mtimeMs / 1000)} ${readFileSync(join(root, r)).toString('hex')}`;
  }
  return out;
}

describe('runRestore against the memory fixture', () => {
  let work: string;
  let ctx: ArchiveContext;
  let ts: string;
  const opts = (pgdata: string, more: Partial<RestoreOptions> = {}): RestoreOptions => ({
    pgdata,
    target: parseTarget({}),
    tablespaceMap: new Map(),
    delta: false,
    parallel: 3,
    bufferBytes: 4096,
    archiveSettings: { archive: 'file:///srv/archive', compression: 'zstd:3' },
    node: '/usr/bin/node',
    ...more,
  });

  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'walvault-restore-unit-'));
    ts = join(work, 'ts');
    ctx = { storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() };
    await writeFixtureBackup(ctx, { name: NAME, packSize: 1024, files: files(ts) });
    // An unfinished backup that ended later: never chosen.
    await writeFixtureBackup(ctx, { name: '20261201T110000F', files: files(ts), incomplete: true, record: { endLsn: '0/9000000' } });
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  it('restores files across packs, modes, mtimes, links and recovery settings', async () => {
    const pgdata = join(work, 'data');
    const r = await runRestore(ctx, opts(pgdata, { target: parseTarget({ targetXid: '1234' }), action: 'pause' }));
    expect(r.record.name).toBe(NAME);
    expect(r.packs).toBeGreaterThan(5);
    expect(readFileSync(join(pgdata, 'base/1/1259')).equals(big)).toBe(true);
    expect(readFileSync(join(pgdata, 'base/1/empty')).length).toBe(0);
    expect(readFileSync(join(pgdata, 'global/pg_control')).equals(Buffer.alloc(8192, 9))).toBe(true);
    expect(lstatSync(pgdata).mode & 0o777).toBe(0o700);
    expect(lstatSync(join(pgdata, 'base/1/1259')).mode & 0o777).toBe(0o600);
    expect(Math.floor(lstatSync(join(pgdata, 'base/1/1259')).mtimeMs / 1000)).toBe(1_700_000_200);
    expect(Math.floor(lstatSync(join(pgdata, 'global')).mtimeMs / 1000)).toBe(1_700_000_100);
    expect(readdirSync(join(pgdata, 'pg_wal'))).toEqual([]);
    expect(readlinkSync(join(pgdata, 'pg_tblspc/16400'))).toBe(ts);
    expect(readFileSync(join(ts, 'PG_17_1/5/16401')).equals(Buffer.alloc(3000, 0x42))).toBe(true);
    expect(existsSync(join(pgdata, 'recovery.signal'))).toBe(true);
    expect(existsSync(join(pgdata, INCOMPLETE_MARKER))).toBe(false);
    expect(existsSync(join(pgdata, 'global/pg_control.walvault-restore'))).toBe(false);
    const auto = readFileSync(join(pgdata, 'postgresql.auto.conf'), 'utf8');
    expect(auto).not.toContain("'stale'");
    expect(auto).toContain("work_mem = '8MB'");
    expect(auto).toMatch(
      /restore_command = 'WALVAULT_CONFIG=''.*walvault-restore\.conf'' WALVAULT_NODE=''\/usr\/bin\/node'' ''.*\/bin\/wal-fetch'' %f %p'/,
    );
    expect(auto).toContain("recovery_target_xid = '1234'\nrecovery_target_action = 'pause'\n");
    const conf = join(pgdata, 'walvault-restore.conf');
    expect(lstatSync(conf).mode & 0o777).toBe(0o600);
    expect(readFileSync(conf, 'utf8')).toContain('archive = "file:///srv/archive"\ncompression = "zstd:3"\n');
  });

  it('run as root, gives everything it creates (new parents too) the owner of the nearest existing directory', async () => {
    const parent = join(work, 'owned');
    mkdirSync(parent);
    chownSync(parent, 4242, 4343);
    const pgdata = join(parent, 'a/b/data');
    await runRestore(ctx, opts(pgdata, { tablespaceMap: new Map([[16400, join(parent, 'x/y/ts')]]) }));
    for (const p of [
      'a',
      'a/b',
      'a/b/data',
      'a/b/data/base/1',
      'a/b/data/base/1/1259',
      'a/b/data/global/pg_control',
      'a/b/data/recovery.signal',
      'x',
      'x/y',
      'x/y/ts/PG_17_1/5/16401',
    ]) {
      expect([lstatSync(join(parent, p)).uid, lstatSync(join(parent, p)).gid], p).toEqual([4242, 4343]);
    }
    expect(lstatSync(join(pgdata, 'pg_tblspc/16400')).uid).toBe(4242);
  });

  it('maps a tablespace elsewhere', async () => {
    const elsewhere = join(work, 'moved');
    await runRestore(ctx, opts(join(work, 'data'), { tablespaceMap: new Map([[16400, elsewhere]]) }));
    expect(readlinkSync(join(work, 'data/pg_tblspc/16400'))).toBe(elsewhere);
    expect(readFileSync(join(elsewhere, 'PG_17_1/5/16401')).length).toBe(3000);
    expect(existsSync(ts)).toBe(false);
  });

  it('fails naming the file on a flipped byte in a pack, and leaves the directory not startable', async () => {
    for (const pack of [3, 6]) {
      const key = packKey(NAME, pack);
      const stored = await ctx.storage.getBuffer(key);
      stored[stored.length - 5]! ^= 0x01;
      await ctx.storage.put(key, stored);
    }
    const pgdata = join(work, 'data');
    // Both damaged packs are reported; the rest is restored (a --delta run then fetches only those).
    await expect(runRestore(ctx, opts(pgdata))).rejects.toThrow(
      /unable to restore file 'base\/1\/1259' of backup '20261201T100000F'.*packs\/000000003.*; 1 more damaged: unable to restore file '[^']+' of backup .*packs\/000000006/,
    );
    expect(readFileSync(join(pgdata, 'PG_VERSION'), 'utf8')).toBe('17\n');
    expect(existsSync(join(pgdata, 'global/pg_control'))).toBe(false);
    expect(existsSync(join(pgdata, 'recovery.signal'))).toBe(false);
    expect(readFileSync(join(pgdata, INCOMPLETE_MARKER), 'utf8')).toMatch(/failed at .*base\/1\/1259/);
  });

  it('refuses a non-empty directory, a running server and an unknown backup before writing anything', async () => {
    const pgdata = join(work, 'data');
    mkdirSync(pgdata);
    writeFileSync(join(pgdata, 'something'), 'x');
    await expect(runRestore(ctx, opts(pgdata))).rejects.toMatchObject({
      exitCode: 4,
      message: expect.stringMatching(/is not empty \(1 entries\).*--delta/),
    });
    writeFileSync(join(pgdata, 'postmaster.pid'), `${process.pid}\n${pgdata}\n`);
    await expect(runRestore(ctx, opts(pgdata, { delta: true }))).rejects.toMatchObject({
      exitCode: 4,
      message: `unable to restore into '${pgdata}': a server is running there (postmaster.pid names live process ${process.pid}); stop it first`,
    });
    await expect(runRestore(ctx, opts(join(work, 'other'), { backup: '20261201T110000F' }))).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/no complete backup of that name/),
    });
    mkdirSync(ts);
    writeFileSync(join(ts, 'old'), 'x');
    await expect(runRestore(ctx, opts(join(work, 'fresh')))).rejects.toThrow(/tablespace 16400 location .* is not empty/);
    expect(existsSync(join(work, 'other'))).toBe(false);
  });

  it('--delta over changed and extra files gives the same tree as a fresh restore, never following links out', async () => {
    const fresh = join(work, 'fresh');
    await runRestore(ctx, opts(fresh, { tablespaceMap: new Map([[16400, join(work, 'ts-fresh')]]) }));
    const reused = join(work, 'reused');
    await runRestore(ctx, opts(reused));
    const outside = join(work, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep-me'), 'precious');
    const changed = readFileSync(join(reused, 'base/1/1259'));
    changed[100]! ^= 0xff;
    writeFileSync(join(reused, 'base/1/1259'), changed);
    writeFileSync(join(reused, 'base/1/small'), 'longer small file');
    writeFileSync(join(reused, 'base/1/extra'), 'extra');
    mkdirSync(join(reused, 'base/99'));
    writeFileSync(join(reused, 'base/99/x'), 'x');
    writeFileSync(join(reused, 'pg_wal/000000010000000000000009'), 'old wal');
    symlinkSync(outside, join(reused, 'base/evil'));
    rmSync(join(reused, 'PG_VERSION'));
    writeFileSync(join(ts, 'PG_17_1/5/stray'), 'stray');
    mkdirSync(join(ts, 'PG_16_0'));
    mkdirSync(join(ts, 'lost+found'));
    const r = await runRestore(ctx, opts(reused, { delta: true }));
    // backup_label, base/1/empty and the tablespace's file; postgresql.auto.conf was rewritten, pg_control is always written.
    expect(r.kept).toBe(3);
    expect(r.removed).toBeGreaterThanOrEqual(5);
    expect(readFileSync(join(outside, 'keep-me'), 'utf8')).toBe('precious');
    const a = tree(fresh);
    const b = tree(reused);
    delete a['pg_tblspc/16400'];
    delete b['pg_tblspc/16400'];
    for (const t of [a, b]) {
      delete t['postgresql.auto.conf'];
      delete t['walvault-restore.conf'];
      delete t['recovery.signal']; // written now: its mtime is the restore's
    }
    expect(b).toEqual(a);
    const tsTree = tree(ts);
    expect(tsTree['lost+found']).toMatch(/^dir/); // not PostgreSQL's: left alone
    delete tsTree['lost+found'];
    expect(tsTree).toEqual(tree(join(work, 'ts-fresh')));
  });
});
