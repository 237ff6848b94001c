/**
 * Starting a data directory that `walvault restore` produced exactly as a DBA would: `pg_ctl start`
 * as the PostgreSQL OS user, in place (the restored settings name absolute paths in it), with only
 * a port, a socket directory and archive_mode=off on the command line. Every start is paired with
 * a stop by the caller (`stopRestored` in a finally).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { PgCluster } from '../../support/cluster.js';
import { openArchive } from '../../../src/archive/open.js';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { silentLogger } from '../../../src/common/log.js';
import { loadConfig } from '../../../src/config/load.js';
import { freePort } from '../../../tools/pgcluster/proc.js';
import { runBinary } from '../../../tools/pgcluster/run.js';
import { pgOwnedDir } from '../../support/walvault.js';
import { collectDataDirectory, writeCollectedBackup } from '../../support/backup-fixture.js';

export interface RestoredServer {
  readonly dataDir: string;
  readonly port: number;
  query<R extends Record<string, unknown>>(sql: string): Promise<R[]>;
}

type Like = Pick<PgCluster, 'binaries' | 'osUser'>;

/** An archive opened in-process (for the fixture writer): a posix directory, or settings as flags. */
export async function archiveContext(archive: string | Record<string, unknown>): Promise<ArchiveContext> {
  const { config } = loadConfig({
    flags: typeof archive === 'string' ? { archive: `file://${archive}`, compression: 'zstd' } : archive,
    env: {},
    defaultConfigFile: '/nonexistent',
  });
  return openArchive(config, silentLogger());
}

/** pg_ctl start; then waits until recovery ended (promote) unless `untilReady`. Throws with the log tail on failure. */
export async function startRestored(like: Like, dataDir: string, root: string, opts: { timeoutMs?: number } = {}): Promise<RestoredServer> {
  const sock = pgOwnedDir(mkdtempSync(join(root, 'sock-')));
  const log = join(sock, 'postgres.log');
  const port = await freePort();
  const r = await runBinary(
    like.binaries.binDir,
    'pg_ctl',
    [
      'start',
      '-D',
      dataDir,
      '-w',
      '-t',
      String(Math.ceil((opts.timeoutMs ?? 120_000) / 1000)),
      '-l',
      log,
      '-o',
      `-p ${port} -k ${sock} -c archive_mode=off`,
    ],
    like.osUser,
  );
  if (r.code !== 0) {
    const { readFileSync } = await import('node:fs');
    const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') : '(no log)';
    throw new Error(`pg_ctl start failed (${r.code}): ${r.stderr}${r.stdout}\n${tail}`);
  }
  const query = async <R extends Record<string, unknown>>(sql: string): Promise<R[]> => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    await client.connect();
    try {
      return (await client.query<R>(sql)).rows;
    } finally {
      await client.end();
    }
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    const rows = await query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r').catch(() => [{ r: true }]);
    if (!rows[0]!.r) break;
    if (Date.now() > deadline) throw new Error(`restored server '${dataDir}' still in recovery`);
    await new Promise((res) => setTimeout(res, 200));
  }
  return { dataDir, port, query };
}

export async function stopRestored(like: Like, dataDir: string): Promise<void> {
  if (!existsSync(join(dataDir, 'postmaster.pid'))) return;
  await runBinary(like.binaries.binDir, 'pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60'], like.osUser);
}

/** pg_ctl start on a directory that must not start: its exit code and output. */
export async function tryStart(like: Like, dataDir: string, root: string): Promise<{ code: number | null; output: string }> {
  const sock = pgOwnedDir(mkdtempSync(join(root, 'sock-')));
  const log = join(sock, 'postgres.log');
  const port = await freePort();
  const r = await runBinary(
    like.binaries.binDir,
    'pg_ctl',
    ['start', '-D', dataDir, '-w', '-t', '20', '-l', log, '-o', `-p ${port} -k ${sock} -c archive_mode=off`],
    like.osUser,
  );
  const { readFileSync } = await import('node:fs');
  const logText = existsSync(log) ? readFileSync(log, 'utf8') : '';
  if (r.code === 0) await stopRestored(like, dataDir);
  return { code: r.code, output: `${r.stderr}${r.stdout}${logText}` };
}

/**
 * A base backup of a running server through the low-level API, tablespaces included (the
 * harness's baseBackup refuses them): pg_backup_start, a walk of the live data directory as
 * BASE_BACKUP would send it, pg_backup_stop (waiting for the WAL to be archived), then stored in
 * the backup format with the label and tablespace map the server returned.
 */
export async function liveBackup(
  primary: PgCluster,
  ctx: ArchiveContext,
  name: string,
  opts: { walSegSize: number; packSize: number },
): Promise<{ startLsn: string; endLsn: string; stopTime: Date }> {
  const session = await primary.connect();
  try {
    const startTime = new Date();
    const startSql =
      primary.major >= 15 ? 'SELECT pg_backup_start($1, true)::text AS lsn' : 'SELECT pg_start_backup($1, true, false)::text AS lsn';
    const startLsn = (await session.query<{ lsn: string }>(startSql, [name])).rows[0]!.lsn;
    const collected = await collectDataDirectory(primary.dataDir, true);
    const stopSql =
      primary.major >= 15
        ? 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(true)'
        : 'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_stop_backup(false, true)';
    const stop = (await session.query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(stopSql)).rows[0]!;
    const stopTime = new Date();
    const files = (
      await session.query<{ s: string; e: string }>('SELECT pg_walfile_name($1::pg_lsn) AS s, pg_walfile_name($2::pg_lsn) AS e', [
        startLsn,
        stop.lsn,
      ])
    ).rows[0]!;
    await writeCollectedBackup(ctx, collected, {
      name,
      startLsn,
      endLsn: stop.lsn,
      walFirst: files.s,
      walLast: files.e,
      startTime,
      stopTime,
      walSegSize: opts.walSegSize,
      packSize: opts.packSize,
      backupLabel: stop.labelfile,
      tablespaceMap: stop.spcmapfile,
    });
    return { startLsn, endLsn: stop.lsn, stopTime };
  } finally {
    await session.end();
  }
}
