/**
 * The ONLY file that touches node-postgres internals (pinned pg 8.23.1). A physical walsender speaks
 * CopyBoth, which pg's public API does not expose, so we ride on its internal `connection`:
 * `copyData` / `copyDone` events in, `sendCopyFromChunk` / `endCopyFrom` out, while the
 * START_REPLICATION query stays pending until streaming ends. Verified in ../shared/research/spike.md.
 */
import pg from 'pg';
import type { Logger } from '../../common/log.js';
import { BackupError, ReplicationError, SqlState, describeCause, isPgRefusal, sqlStateOf } from '../../common/errors.js';
import { isTransientNetworkCode } from '../../common/retry.js';
import { formatLsn, parseLsn, type Lsn } from '../../segment/lsn.js';
import { timeline as toTimeline, type Timeline } from '../../segment/timeline.js';
import { serializeStandbyStatus, type ReplicationMessage, type StandbyStatus } from './protocol.js';
import { interposeReader } from './copy-reader.js';
import { interposeCopyOut } from './copy-out-reader.js';
import { replicationSocket } from './read-socket.js';
import { parseConnInfo, type ConnInfo } from './conninfo.js';
import { checksumFailureFiles, type ResultSet } from './base-backup.js';

/** The slice of pg's internal Connection we rely on. */
interface PgInternalConnection {
  on(event: 'copyData', fn: (msg: { chunk: Buffer }) => void): void;
  on(event: 'copyDone', fn: () => void): void;
  removeAllListeners(event: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  stream: NodeJS.ReadableStream & { pause(): void; resume(): void; destroy(err?: Error): void };
}

/** The protocol events of a simple query that pg's Query does not hand on as they arrive. */
interface PgMessageEvents {
  on(event: string, fn: (msg: never) => void): void;
  off(event: string, fn: (msg: never) => void): void;
}

/** What BASE_BACKUP sends, in order: result sets, and CopyOut streams (one or more). */
export type BaseBackupEvent =
  | { readonly kind: 'result'; readonly result: ResultSet }
  | { readonly kind: 'copyStart' }
  /**
   * A piece of one CopyData message's payload, valid only until the handler's promise settles.
   * Large messages may come in several pieces (`first` on the one that starts it, `last` on the
   * one that ends it); payloads up to GATHER_BYTES (copy-out-reader.ts) always come whole.
   */
  | { readonly kind: 'copyData'; readonly chunk: Buffer; readonly first: boolean; readonly last: boolean }
  | { readonly kind: 'copyEnd' };

/** Checksum failure WARNINGs named in a backup error; the server log has the full list. */
const MAX_NAMED_FILES = 10;
/** CopyData message size for UPLOAD_MANIFEST. */
const UPLOAD_CHUNK_BYTES = 1 << 20;

export interface SystemInfo {
  readonly systemId: string;
  readonly timeline: Timeline;
  readonly xlogpos: Lsn;
}

export interface SlotInfo {
  readonly restartLsn: Lsn | null;
  readonly restartTli: Timeline | null;
}

export interface StreamHandlers {
  /** Called synchronously for every message; `data` is only valid during the call. */
  onMessage(msg: ReplicationMessage): void;
}

/** How a START_REPLICATION ended. */
export interface StreamEnd {
  /** Set when the server ended a historic timeline: where the next one starts. */
  readonly next?: { readonly timeline: Timeline; readonly start: Lsn };
}

export class ReplicationConnection {
  private constructor(
    private readonly client: pg.Client,
    private readonly log: Logger,
    readonly conn: ConnInfo,
  ) {}

  /**
   * `directReads`: the connection streams bulk data (START_REPLICATION, BASE_BACKUP); reads go into
   * one reused buffer (read-socket.ts) and, while streaming, straight to our own frame readers.
   */
  static async connect(
    conninfo: string | undefined,
    log: Logger,
    applicationName = 'walvault',
    opts: { directReads?: boolean } = {},
  ): Promise<ReplicationConnection> {
    const info = parseConnInfo(conninfo ?? '');
    const client = new pg.Client({
      ...info.pgConfig,
      application_name: info.pgConfig.application_name ?? process.env['PGAPPNAME'] ?? applicationName,
      replication: 'true',
      // node-postgres calls `stream` with its connection settings (TLS resolved from the conninfo
      // and PGSSLMODE); its types declare no argument.
      ...(opts.directReads ? { stream: replicationSocket as unknown as NonNullable<pg.ClientConfig['stream']> } : {}),
    } as pg.ClientConfig);
    // A lost connection surfaces as an 'error' event; without a listener it would crash the process.
    client.on('error', (err) => log.warn({ err }, 'replication connection error'));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      const state = sqlStateOf(err);
      // The server's own text differs by major ("must be superuser or replication role to start
      // walsender", 16+: "permission denied to start WAL sender"); say what fixes it.
      const hint = state === SqlState.insufficientPrivilege ? ' (the role needs the REPLICATION attribute)' : '';
      throw new ReplicationError(`unable to connect for replication to ${info.description}: ${describeCause(err)}${hint}`, {
        cause: err,
        // Authentication and privilege failures need the operator; anything else (refused,
        // too many connections, starting up) may pass by itself.
        retryable: !isPgRefusal(state),
      });
    }
    return new ReplicationConnection(client, log, info);
  }

  private internal(): PgInternalConnection {
    return (this.client as unknown as { connection: PgInternalConnection }).connection;
  }

  private async command<T extends Record<string, unknown>>(sql: string): Promise<T[]> {
    try {
      const res = await this.client.query(sql);
      return res.rows as T[];
    } catch (err) {
      throw new ReplicationError(`unable to run replication command '${sql}': ${describeCause(err)}`, {
        cause: err,
        retryable: isConnectionLoss(err),
      });
    }
  }

  async identifySystem(): Promise<SystemInfo> {
    const [row] = await this.command<{ systemid: string; timeline: string | number; xlogpos: string }>('IDENTIFY_SYSTEM');
    if (!row) throw new ReplicationError('unable to identify system: IDENTIFY_SYSTEM returned no row');
    return { systemId: String(row.systemid), timeline: toTimeline(Number(row.timeline)), xlogpos: parseLsn(row.xlogpos) };
  }

  async show(setting: string): Promise<string> {
    if (!/^[a-z_]+$/.test(setting)) throw new ReplicationError(`unable to show setting '${setting}': bad name`);
    const [row] = await this.command<Record<string, string>>(`SHOW ${setting}`);
    const value = row ? Object.values(row)[0] : undefined;
    if (value === undefined) throw new ReplicationError(`unable to show setting '${setting}': no value`);
    return String(value);
  }

  /** READ_REPLICATION_SLOT exists from PostgreSQL 15; undefined when the slot does not exist. */
  async readReplicationSlot(slot: string): Promise<SlotInfo | undefined> {
    const rows = await this.command<{ slot_type: string | null; restart_lsn: string | null; restart_tli: string | null }>(
      `READ_REPLICATION_SLOT ${quoteIdent(slot)}`,
    );
    const row = rows[0];
    if (!row || row.slot_type === null) return undefined;
    if (row.slot_type !== 'physical') {
      throw new ReplicationError(`unable to use replication slot '${slot}': it is a ${row.slot_type} slot`);
    }
    return {
      restartLsn: row.restart_lsn === null ? null : parseLsn(row.restart_lsn),
      restartTli: row.restart_tli === null ? null : toTimeline(Number(row.restart_tli)),
    };
  }

  async createPhysicalSlot(slot: string): Promise<void> {
    await this.command(`CREATE_REPLICATION_SLOT ${quoteIdent(slot)} PHYSICAL RESERVE_WAL`);
  }

  async timelineHistory(timeline: number): Promise<{ fileName: string; content: Buffer }> {
    const [row] = await this.command<{ filename: string; content: string | Buffer }>(`TIMELINE_HISTORY ${timeline}`);
    if (!row) throw new ReplicationError(`unable to read history of timeline ${timeline}: no row`);
    const content = typeof row.content === 'string' ? Buffer.from(row.content, 'utf8') : Buffer.from(row.content);
    return { fileName: row.filename, content };
  }

  /**
   * Streams from `startLsn` on `timeline` until the server ends the timeline, `stop()` is called or
   * the connection fails. Resolves with the next timeline when the server switched.
   */
  async startReplication(
    opts: { slot?: string; startLsn: Lsn; timeline: Timeline; coalesceMs?: number },
    handlers: StreamHandlers,
  ): Promise<StreamEnd> {
    const conn = this.internal();
    let failure: Error | undefined;
    const coalescing = coalesceReads(conn.stream, opts.coalesceMs ?? 0);
    // Installed while the connection is idle, before the command is sent (see copy-reader.ts).
    const stopReading = interposeReader(
      conn.stream,
      handlers.onMessage,
      (err) => {
        // Stop at the first bad message or write failure: never acknowledge past what we stored.
        // Not logged here: it is rethrown below and the caller decides what it means.
        failure = err;
        conn.stream.destroy(err);
      },
      coalescing.afterRead,
    );
    const slot = opts.slot ? `SLOT ${quoteIdent(opts.slot)} ` : '';
    const sql = `START_REPLICATION ${slot}PHYSICAL ${formatLsn(opts.startLsn)} TIMELINE ${opts.timeline}`;
    // The server ends a historic timeline with CopyDone; we answer with ours so it sends the result.
    conn.on('copyDone', () => conn.endCopyFrom());
    this.streaming = true;
    try {
      const result = (await this.client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
      if (failure) throw failure;
      const results = Array.isArray(result) ? result : [result];
      const row = results.find((r) => r.rows?.[0] && 'next_tli' in r.rows[0])?.rows[0] as
        { next_tli: string; next_tli_startpos: string } | undefined;
      return row ? { next: { timeline: toTimeline(Number(row.next_tli)), start: parseLsn(row.next_tli_startpos) } } : {};
    } catch (err) {
      if (failure) throw failure;
      throw new ReplicationError(
        `unable to stream WAL from ${formatLsn(opts.startLsn)} on timeline ${opts.timeline}: ${describeCause(err)}`,
        {
          cause: err,
          retryable: isConnectionLoss(err) || !isServerRefusal(err),
        },
      );
    } finally {
      stopReading();
      coalescing.stop();
      this.streaming = false;
      conn.removeAllListeners('copyDone');
    }
  }

  /**
   * Runs a BASE_BACKUP `command` and hands every event to `onEvent` in order. CopyData is read by
   * our own frame reader (copy-out-reader.ts: payloads as views into the socket read, no merge
   * copies); the other messages go through node-postgres as before. While a returned promise is
   * pending the socket is paused, so memory stays bounded however slow the consumer is. A
   * consumer failure drops the connection at once (the server aborts the backup) and is rethrown.
   * WARNINGs are collected: page checksum failures come as WARNINGs and then, after all data, an
   * ERROR with SQLSTATE XX001, which becomes a BackupError naming the files.
   */
  async baseBackup(command: string, label: string, onEvent: (ev: BaseBackupEvent) => Promise<void> | void): Promise<void> {
    const conn = this.internal();
    const events = conn as unknown as PgMessageEvents;
    const warnings: string[] = [];
    let failure: Error | undefined;
    /** What the event node-postgres just emitted started; the reader waits for it before the next frame. */
    let pending: Promise<void> | undefined;
    /** The last handler promise, waited for (settled) before returning. */
    let last: Promise<void> = Promise.resolve();
    let columns: string[] | undefined;
    let rows: Array<Array<string | null>> = [];

    const deliver = (ev: BaseBackupEvent): Promise<void> | undefined => {
      if (failure) return undefined;
      let p: Promise<void> | void;
      try {
        p = onEvent(ev);
      } catch (err) {
        p = Promise.reject(err);
      }
      if (!p) return undefined;
      last = p.catch(() => undefined);
      return p;
    };
    const emitted = (ev: BaseBackupEvent): void => {
      pending = deliver(ev);
    };
    const listeners: Record<string, (msg: never) => void> = {
      rowDescription: (msg: { fields: Array<{ name: string }> }) => {
        columns = msg.fields.map((f) => f.name);
        rows = [];
      },
      dataRow: (msg: { fields: Array<string | null> }) => void rows.push(msg.fields),
      commandComplete: () => {
        if (columns) emitted({ kind: 'result', result: { columns, rows } });
        columns = undefined;
      },
      copyOutResponse: () => emitted({ kind: 'copyStart' }),
      copyDone: () => emitted({ kind: 'copyEnd' }),
    };
    const onNotice = (msg: { code?: string | undefined; message?: string | undefined; severity?: string | undefined }): void => {
      // Class 01 is "warning" whatever lc_messages translates the severity to.
      if (msg.code?.startsWith('01')) warnings.push(msg.message ?? '');
      const level = msg.code?.startsWith('01') ? 'warn' : 'info';
      this.log[level]({ sqlState: msg.code, severity: msg.severity }, `server: ${msg.message ?? ''}`);
    };
    for (const [name, fn] of Object.entries(listeners)) events.on(name, fn);
    this.client.on('notice', onNotice);
    // Installed while the connection is idle, before the command is sent (see copy-out-reader.ts).
    const stopReading = interposeCopyOut(
      conn.stream,
      (chunk, first, lastPiece) => deliver({ kind: 'copyData', chunk, first, last: lastPiece }),
      (err) => {
        failure ??= err;
        conn.stream.destroy(err);
      },
      () => {
        const p = pending;
        pending = undefined;
        return p;
      },
    );
    let queryError: unknown;
    try {
      await this.client.query(command);
    } catch (err) {
      queryError = err;
    } finally {
      stopReading();
      for (const [name, fn] of Object.entries(listeners)) events.off(name, fn);
      this.client.off('notice', onNotice);
    }
    await last;
    if (failure) throw failure;
    if (queryError !== undefined) throw baseBackupError(queryError, label, warnings);
  }

  /**
   * UPLOAD_MANIFEST (PG17+): the server answers CopyInResponse and takes the parent backup's
   * backup_manifest as CopyData; it keeps it for this session, for a following BASE_BACKUP
   * (INCREMENTAL). pg's Query answers every CopyInResponse with CopyFail, so this one query gets
   * its own handler that sends the bytes and CopyDone instead. Server refusals (a version 1
   * manifest, a bad manifest checksum) come back as the query's error, with the pg error as cause.
   */
  async uploadManifest(manifest: Buffer, label: string): Promise<void> {
    const query = new pg.Query('UPLOAD_MANIFEST') as pg.Query & { handleCopyInResponse(c: PgInternalConnection): void };
    query.handleCopyInResponse = (c: PgInternalConnection): void => {
      // Many moderate messages rather than one the size of the manifest (it may be hundreds of MB).
      for (let off = 0; off < manifest.length; off += UPLOAD_CHUNK_BYTES) {
        c.sendCopyFromChunk(manifest.subarray(off, off + UPLOAD_CHUNK_BYTES));
      }
      c.endCopyFrom();
    };
    const done = new Promise<void>((resolve, reject) => {
      query.on('end', () => resolve());
      query.on('error', reject);
    });
    try {
      void this.client.query(query);
      await done;
    } catch (err) {
      throw new ReplicationError(`unable to upload the parent manifest for base backup '${label}': ${describeCause(err)}`, {
        cause: err,
        retryable: isConnectionLoss(err),
      });
    }
  }

  private streaming = false;

  sendStatus(status: StandbyStatus): void {
    if (!this.streaming) return;
    this.internal().sendCopyFromChunk(serializeStandbyStatus(status));
  }

  /** Ends streaming cleanly (CopyDone); startReplication() then resolves. */
  stopStreaming(): void {
    if (this.streaming) this.internal().endCopyFrom();
  }

  /** Backpressure: stop reading from the socket while storage catches up. */
  pause(): void {
    this.internal().stream.pause();
  }

  resume(): void {
    this.internal().stream.resume();
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }

  /** Drops the TCP connection at once (crash-like), used on fatal local errors. */
  destroy(): void {
    this.internal().stream.destroy();
  }
}

/** Reads at least this large need no coalescing. */
const COALESCED_READ_BYTES = 32 * 1024;

/**
 * A walsender under a steady load sends many small messages, and a receiver that keeps up reads
 * each one as it arrives: ~8 kB per read, each a system call, a buffer, a parse and a callback in
 * Node. After a small read this pauses the socket for `ms`, so the kernel gathers what follows and
 * the next read takes it in one piece (up to the socket's read buffer). Adds at most `ms` to the write position's lag;
 * the flush position (what a slot and synchronous commit wait for) is reported on its own schedule.
 * `afterRead` is told the size of each read; `stop` ends it (and resumes a paused socket).
 */
function coalesceReads(
  stream: PgInternalConnection['stream'],
  ms: number,
): { afterRead: ((bytes: number) => void) | undefined; stop: () => void } {
  if (ms <= 0) return { afterRead: undefined, stop: () => undefined };
  let timer: NodeJS.Timeout | undefined;
  const afterRead = (bytes: number): void => {
    if (timer !== undefined || bytes >= COALESCED_READ_BYTES) return;
    stream.pause();
    timer = setTimeout(() => {
      timer = undefined;
      stream.resume();
    }, ms);
  };
  return {
    afterRead,
    stop: () => {
      if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
        stream.resume();
      }
    },
  };
}

function baseBackupError(err: unknown, label: string, warnings: readonly string[]): Error {
  const state = sqlStateOf(err);
  if (state === 'XX001') {
    const files = checksumFailureFiles(warnings);
    const named = files.slice(0, MAX_NAMED_FILES).join(', ');
    const more = files.length > MAX_NAMED_FILES ? ` and ${files.length - MAX_NAMED_FILES} more` : '';
    const where = files.length > 0 ? ` in ${named}${more}` : '';
    return new BackupError(`unable to take base backup '${label}': page checksum verification failed${where} (${describeCause(err)})`, {
      cause: err,
    });
  }
  return new ReplicationError(`unable to take base backup '${label}': ${describeCause(err)}`, {
    cause: err,
    // A lost connection or exhausted resources (class 53) may pass; the server refusing the backup will not.
    retryable: isConnectionLoss(err) || state?.startsWith('53') === true,
  });
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** SQLSTATEs of a connection that went away: class 08 and class 57P (shutdown, restart, ...). */
function isLossState(state: string): boolean {
  return state.startsWith('08') || state.startsWith('57P');
}

export function isConnectionLoss(err: unknown): boolean {
  const state = sqlStateOf(err);
  if (state !== undefined) return isLossState(state);
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    if (isTransientNetworkCode((e as NodeJS.ErrnoException).code)) return true;
    // node-postgres reports a socket closed under it with these texts and no code at all.
    if (/^Connection terminated|ended unexpectedly/.test(e.message)) return true;
  }
  return false;
}

/** The server refused the request itself (e.g. requested WAL already removed): retrying blindly will not help. */
export function isServerRefusal(err: unknown): boolean {
  const state = sqlStateOf(err);
  return state !== undefined && !isLossState(state);
}
