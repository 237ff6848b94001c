/**
 * The server side of backup-push before any data moves: who the server is (IDENTIFY_SYSTEM,
 * wal_segment_size, server_version_num over the replication connection) and whether this archive
 * may hold its backups. A server of another cluster, segment size or major is refused before the
 * backup's name is even claimed; an archive without identity takes the server's.
 */
import type { ArchiveContext } from '../archive/context.js';
import { WRITER } from '../archive/context.js';
import { ensureIdentity, requireIdentity, type ArchiveIdentity } from '../archive/identity.js';
import { ArchiveMismatchError, PostgresError, describeCause } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import type { ReplicationConnection } from '../postgres/replication/connection.js';
import { closeServer, connectServer, switchWal, type ServerConnection } from '../postgres/sql.js';
import { parseSegSizeSetting } from '../segment/segsize.js';

export interface ServerIdentity {
  readonly systemId: string;
  readonly timeline: number;
  readonly walSegSize: number;
  readonly pgVersionNum: number;
  readonly pgMajor: number;
}

export async function identifyServer(conn: ReplicationConnection): Promise<ServerIdentity> {
  const system = await conn.identifySystem();
  const walSegSize = parseSegSizeSetting(await conn.show('wal_segment_size'));
  const pgVersionNum = Number(await conn.show('server_version_num'));
  return { systemId: system.systemId, timeline: system.timeline, walSegSize, pgVersionNum, pgMajor: Math.floor(pgVersionNum / 10000) };
}

/** The archive identity the backup is checked against (created from the server for a new archive). */
export async function checkArchiveFor(ctx: ArchiveContext, server: ServerIdentity): Promise<ArchiveIdentity> {
  const existing = (ctx.identity ??= await requireIdentity(ctx.storage, 'back up into this archive'));
  if (!existing) {
    ctx.identity = await ensureIdentity(
      ctx.storage,
      { systemId: server.systemId, pgMajor: server.pgMajor, walSegSize: server.walSegSize },
      'a base backup',
      WRITER,
    );
    return ctx.identity;
  }
  const problems: string[] = [];
  if (existing.systemId !== server.systemId) {
    problems.push(`the server is database system ${server.systemId}, the archive belongs to ${existing.systemId}`);
  }
  if (existing.walSegSize !== server.walSegSize) {
    problems.push(`the server's wal_segment_size is ${server.walSegSize}, the archive's ${existing.walSegSize}`);
  }
  if (existing.pgMajor !== server.pgMajor) {
    problems.push(`the server is PostgreSQL ${server.pgMajor}, the archive holds PostgreSQL ${existing.pgMajor} WAL`);
  }
  if (problems.length > 0) throw new ArchiveMismatchError(`unable to back up into this archive: ${problems.join('; ')}`);
  return existing;
}

/**
 * pg_switch_wal() over an ordinary SQL connection, opened on first use. A role or pg_hba.conf that
 * allows replication only, or a standby, cannot switch: that is logged once and the wait goes on
 * (the archiver or the primary may still deliver the segment in time).
 */
export class WalSwitcher {
  private conn: ServerConnection | undefined;
  private disabled = false;

  constructor(
    private readonly conninfo: string | undefined,
    private readonly log: Logger,
  ) {}

  async switch(): Promise<void> {
    if (this.disabled) return;
    try {
      this.conn ??= await connectServer(this.conninfo, 'walvault backup-push');
      const { rows } = await this.conn.client.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      if (rows[0]?.r) {
        this.disabled = true;
        this.log.info('the server is a standby: it cannot switch WAL; waiting for its primary to finish the segment');
        return;
      }
      const ended = await switchWal(this.conn);
      this.log.info({ segment: ended }, 'the server switched WAL');
    } catch (err) {
      this.disabled = true;
      const reason = err instanceof PostgresError ? err.message : describeCause(err);
      this.log.warn({ err: reason }, 'unable to ask the server to switch WAL; waiting for the archiver');
    }
  }

  async close(): Promise<void> {
    await closeServer(this.conn);
    this.conn = undefined;
  }
}
