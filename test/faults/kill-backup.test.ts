/**
 * kill -9 of backup-push (through the bin/walvault launcher) at several points of a real backup:
 * while the server checkpoints, in the middle of the copy (packs already stored), and while it
 * waits for WAL (archive_command failing, so the wait cannot end). No kill may leave a backup.json;
 * the next backup-push succeeds and removes the killed runs' leftovers once they are abandoned
 * (`--backup-abandoned-after 1` instead of five minutes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../src/archive/context.js';
import { heartbeatKey } from '../../src/backup/layout.js';
import { decodeRecord, type HeartbeatRecord } from '../../src/backup/record.js';
import { type PgCluster, useClusterPool } from '../support/cluster.js';
import { kill9, running, sleep } from '../support/faults.js';
import { bin, pgOwnedDir, waitForArchiveDone } from '../support/walvault.js';
import {
  archiveSetup,
  archivingCluster,
  backupNames,
  backupPush,
  checkBackupContent,
  openArchiveCtx,
  type ArchiveSetup,
} from '../integration/backup/push-setup.js';

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('kill -9 of backup-push', { timeout: 400_000 }, () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-kill-backup-'));
  let a: ArchiveSetup;
  let c: PgCluster;
  let ctx: ArchiveContext;
  const killed: string[] = [];

  beforeAll(async () => {
    a = archiveSetup(root);
    c = pool.track(await archivingCluster(15, a));
    // ~25 MB of table: at the 4 MB/s MAX_RATE below the copy lasts several seconds.
    await c.query(
      'CREATE TABLE filler AS SELECT g AS id, md5(random()::text) || repeat(md5(g::text), 6) AS pad FROM generate_series(1, 90000) g',
    );
    await c.switchWal();
    await waitForArchiveDone(c, 60_000);
    ctx = await openArchiveCtx(a);
  });
  afterAll(async () => {
    await ctx?.storage.close();
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  function start(): ChildProcess {
    const child = spawn(
      bin('walvault'),
      [
        'backup-push',
        '--config',
        a.configFile,
        '--pg-conninfo',
        c.conninfo(),
        '--backup-checkpoint',
        'fast',
        '--backup-max-rate',
        '4MB',
        '--log-format',
        'json',
      ],
      { env: { ...process.env, WALVAULT_NODE: process.execPath, ...a.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.resume();
    child.stderr!.resume();
    return child;
  }

  /** The one backup that has objects but was not there before. */
  async function newBackup(before: readonly string[]): Promise<string | undefined> {
    return (await backupNames(ctx)).any.find((n) => !before.includes(n));
  }

  async function killWhen(what: string, ready: (name: string) => Promise<boolean>): Promise<void> {
    const before = (await backupNames(ctx)).any;
    const child = start();
    const exited = new Promise<number | null>((r) => child.on('exit', (code, signal) => r(signal === 'SIGKILL' ? 137 : code)));
    try {
      const name = await until(
        async () => {
          const n = await newBackup(before);
          return n !== undefined && (await ready(n)) ? n : undefined;
        },
        120_000,
        what,
      );
      expect(running(child.pid!), `backup-push still running at '${what}'`).toBe(true);
      expect(kill9(child.pid!)).toBe(true);
      expect(await exited).toBe(137);
      killed.push(name);
      expect((await backupNames(ctx)).complete, what).not.toContain(name);
    } finally {
      if (running(child.pid!)) kill9(child.pid!);
    }
  }

  const phaseOf = async (name: string): Promise<string | undefined> => {
    const buf = await ctx.storage.getBuffer(heartbeatKey(name)).catch(() => undefined);
    return buf ? decodeRecord<HeartbeatRecord>(buf, 'hb', name).phase : undefined;
  };
  const hasPack = async (name: string): Promise<boolean> => {
    for await (const o of ctx.storage.list(`backups/${name}/packs/`)) if (o.key) return true;
    return false;
  };

  it('leaves no complete backup, and the next run succeeds and removes the leftovers', async () => {
    await killWhen('the name claimed', async () => true);
    await killWhen('packs stored during the copy', hasPack);
    await c.query("ALTER SYSTEM SET archive_command = 'exit 1'");
    await c.query('SELECT pg_reload_conf()');
    try {
      await killWhen('the WAL wait', async (n) => (await phaseOf(n)) === 'wal-wait');
    } finally {
      await c.query('ALTER SYSTEM RESET archive_command');
      await c.query('SELECT pg_reload_conf()');
    }
    expect(new Set(killed).size).toBe(3);
    expect((await backupNames(ctx)).any.sort()).toEqual([...killed].sort());

    await sleep(1500);
    const res = await backupPush(c, a, ['--backup-abandoned-after', '1']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/removed an abandoned backup/);
    const names = await backupNames(ctx);
    expect(names.complete).toHaveLength(1);
    expect(names.any).toEqual(names.complete);
    await checkBackupContent(ctx, names.complete[0]!);
  });
});
