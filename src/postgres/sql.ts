/**
 * What `check` and `status` ask PostgreSQL over an ordinary (non-replication) connection: settings,
 * identity, WAL position, archiver statistics, the archive_status queue and a replication slot.
 */
import pg from 'pg';
import { PostgresError, describeCause } from '../common/errors.js';
import { parseLsn, type Lsn } from '../segment/lsn.js';
import { parseConnInfo } from '../postgres/replication/conninfo.js';

export interface ServerConnection {
  readonly client: pg.Client;
  /** host:port and user, never the password. */
  readonly description: string;
}

const TIMEOUT_MS = 10_000;

export async function connectServer(conninfo: string | undefined, applicationName: string): Promise<ServerConnection> {
  const info = parseConnInfo(conninfo ?? '');
  const client = new pg.Client({
    connectionTimeoutMillis: TIMEOUT_MS,
    statement_timeout: TIMEOUT_MS,
    query_timeout: TIMEOUT_MS + 2_000,
    application_name: applicationName,
    ...info.pgConfig,
  } as pg.ClientConfig);
  // An idle error (server restart) must not crash the process; the next query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw new PostgresError(`unable to connect to PostgreSQL '${info.description}': ${describeCause(err)}`, {
      cause: err,
      retryable: true,
    });
  }
  return { client, description: info.description };
}

export async function closeServer(conn: ServerConnection | undefined): Promise<void> {
  await conn?.client.end().catch(() => undefined);
}

export interface ServerFacts {
  readonly version: string;
  readonly major: number;
  readonly systemId: string;
  readonly walSegSize: number;
  readonly inRecovery: boolean;
  /** Insert position on a primary; last replayed position in recovery (null before any replay). */
  readonly currentLsn: Lsn | null;
  readonly timeline: number;
  readonly walLevel: string;
  readonly archiveMode: string;
  readonly archiveCommand: string;
  /** PostgreSQL 15+: when set, archive_command is ignored. */
  readonly archiveLibrary: string | null;
}

export async function readServerFacts(conn: ServerConnection): Promise<ServerFacts> {
  const { rows } = await conn.client.query<Record<string, string | boolean | null>>(`
    SELECT current_setting('server_version') AS version,
           current_setting('server_version_num') AS num,
           (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
           pg_size_bytes(current_setting('wal_segment_size'))::text AS segsize,
           pg_is_in_recovery() AS rec,
           (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn,
           (CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id::text FROM pg_control_checkpoint())
                 ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text END) AS tli,
           current_setting('wal_level') AS wal_level,
           current_setting('archive_mode') AS archive_mode,
           -- current_setting() shows '(disabled)' while archive_mode is off; reset_val is what is configured.
           (SELECT reset_val FROM pg_settings WHERE name = 'archive_command') AS archive_command,
           current_setting('archive_library', true) AS archive_library`);
  const r = rows[0]!;
  const num = Number(r['num']);
  return {
    version: String(r['version']),
    major: Math.floor(num / 10000),
    systemId: String(r['sysid']),
    walSegSize: Number(r['segsize']),
    inRecovery: r['rec'] === true,
    currentLsn: typeof r['lsn'] === 'string' ? parseLsn(r['lsn']) : null,
    timeline: Number(r['tli']),
    walLevel: String(r['wal_level']),
    archiveMode: String(r['archive_mode']),
    archiveCommand: String(r['archive_command'] ?? ''),
    archiveLibrary: typeof r['archive_library'] === 'string' && r['archive_library'] !== '' ? r['archive_library'] : null,
  };
}

export interface ArchiverStats {
  readonly archivedCount: number;
  readonly lastArchivedWal: string | null;
  readonly lastArchivedTime: Date | null;
  readonly failedCount: number;
  readonly lastFailedWal: string | null;
  readonly lastFailedTime: Date | null;
}

export async function readArchiver(conn: ServerConnection): Promise<ArchiverStats> {
  const { rows } = await conn.client.query<{
    archived_count: string;
    last_archived_wal: string | null;
    last_archived_time: Date | null;
    failed_count: string;
    last_failed_wal: string | null;
    last_failed_time: Date | null;
  }>(
    'SELECT archived_count::text, last_archived_wal, last_archived_time, failed_count::text, last_failed_wal, last_failed_time FROM pg_stat_archiver',
  );
  const r = rows[0]!;
  return {
    archivedCount: Number(r.archived_count),
    lastArchivedWal: r.last_archived_wal,
    lastArchivedTime: r.last_archived_time,
    failedCount: Number(r.failed_count),
    lastFailedWal: r.last_failed_wal,
    lastFailedTime: r.last_failed_time,
  };
}

/** The archiver is failing now: its last failure is more recent than its last success. */
export function archiverFailing(a: ArchiverStats): boolean {
  if (a.lastFailedTime === null) return false;
  return a.lastArchivedTime === null || a.lastFailedTime.getTime() > a.lastArchivedTime.getTime();
}

export interface ReadyQueue {
  /** WAL files PostgreSQL has handed to archiving that are not archived yet (`.ready`). */
  readonly count: number;
  /** When the oldest of them was finished. */
  readonly oldest: Date | null;
}

/** pg_ls_archive_statusdir() needs PostgreSQL 12+ and superuser or pg_monitor. */
export async function readReadyQueue(conn: ServerConnection): Promise<ReadyQueue> {
  const { rows } = await conn.client.query<{ n: string; oldest: Date | null }>(
    "SELECT count(*)::text AS n, min(modification) AS oldest FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
  );
  return { count: Number(rows[0]!.n), oldest: rows[0]!.oldest };
}

export interface SlotState {
  readonly name: string;
  readonly type: string;
  readonly active: boolean;
  readonly restartLsn: Lsn | null;
  /** reserved, extended, unreserved or lost (PostgreSQL 13+). */
  readonly walStatus: string | null;
  /** Bytes between the restart point and the server's current position. */
  readonly lagBytes: number | null;
}

export async function readSlot(conn: ServerConnection, name: string): Promise<SlotState | undefined> {
  const { rows } = await conn.client.query<{
    slot_name: string;
    slot_type: string;
    active: boolean;
    restart_lsn: string | null;
    wal_status: string | null;
    lag: string | null;
  }>(
    `SELECT slot_name, slot_type, active, restart_lsn::text, wal_status,
            pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
                            restart_lsn)::text AS lag
       FROM pg_replication_slots WHERE slot_name = $1`,
    [name],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    name: r.slot_name,
    type: r.slot_type,
    active: r.active,
    restartLsn: r.restart_lsn ? parseLsn(r.restart_lsn) : null,
    walStatus: r.wal_status,
    lagBytes: r.lag === null ? null : Number(r.lag),
  };
}

/** Writes a tiny record, ends the segment and returns the name of the segment that was ended. */
export async function switchWal(conn: ServerConnection): Promise<string> {
  // Something must be written since the last switch, or pg_switch_wal() ends nothing.
  await conn.client.query("SELECT pg_logical_emit_message(false, 'walvault', 'check')");
  const { rows } = await conn.client.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f');
  return rows[0]!.f;
}
