/**
 * Reads a base backup from the server over the replication protocol and delivers it, parsed, to a
 * BackupEntrySink: BASE_BACKUP (base-backup.ts builds it for the server's generation), its CopyOut
 * stream through the tar parser, the manifest bytes, the start/end positions. Every sink call is
 * awaited before more is read from the socket, so memory is bounded by one socket read and one
 * tar header whatever the database size.
 *
 * PG15+: one CopyOut with typed messages ('n' starts an archive, 'm' the manifest).
 * PG13/14: one CopyOut per tablespace row in header order (data directory last), raw tar without
 * terminator and without a name, then one CopyOut with the manifest; progress = bytes received.
 */
import type { Logger } from '../common/log.js';
import { AbortedError, ReplicationError } from '../common/errors.js';
import { formatLsn } from '../segment/lsn.js';
import type { BaseBackupEvent, ReplicationConnection } from '../postgres/replication/connection.js';
import {
  INCREMENTAL_VERSION_NUM,
  NEW_PROTOCOL_VERSION_NUM,
  baseBackupCommand,
  parseCopyStreamMessage,
  parsePositionResult,
  parseTablespaceResult,
  tablespaceOfArchive,
  type PositionResult,
  type TablespaceResultRow,
} from '../postgres/replication/base-backup.js';
import type { BackupEnd, BackupEntrySink } from './entry-sink.js';
import { TarParser, type TarEntry } from './tar.js';
import { IncrementalUnavailableError, classifyIncrementalError } from './incremental/errors.js';

export interface ReadBaseBackupOptions {
  readonly label: string;
  readonly checkpoint: 'fast' | 'spread';
  /** Server-side rate limit in kB/s (32..1048576); omitted = unlimited. */
  readonly maxRateKbps?: number;
  /** Aborting drops the connection at once (also while the server waits for its checkpoint). */
  readonly signal?: AbortSignal;
  /**
   * PG17+: an incremental backup relative to the backup whose PostgreSQL backup_manifest this is
   * (UPLOAD_MANIFEST, then BASE_BACKUP (INCREMENTAL) on the same connection). Refusals become
   * IncrementalUnavailableError (see incremental/errors.ts).
   */
  readonly incremental?: { readonly parentManifest: Buffer };
}

export interface BaseBackupResult extends BackupEnd {
  readonly serverVersionNum: number;
  /** Bytes of PostgreSQL's backup_manifest delivered to the sink. */
  readonly manifestBytes: number;
}

/** Runs one base backup into `sink`; resolves after `sink.end()` with the end position. */
export async function readBaseBackup(
  conn: ReplicationConnection,
  options: ReadBaseBackupOptions,
  sink: BackupEntrySink,
  log: Logger,
): Promise<BaseBackupResult> {
  const serverVersionNum = Number(await conn.show('server_version_num'));
  const { incremental } = options;
  if (incremental && serverVersionNum < INCREMENTAL_VERSION_NUM) {
    throw new IncrementalUnavailableError(
      `unable to take incremental backup '${options.label}': the server is PostgreSQL ${serverVersionNum}, incremental backups need 17 or newer`,
      'parent-unsupported',
    );
  }
  const command = baseBackupCommand({ ...options, serverVersionNum, incremental: incremental !== undefined });
  const reader = new BackupStreamReader(sink, options.label, serverVersionNum >= NEW_PROTOCOL_VERSION_NUM);
  log.info(
    { serverVersionNum, checkpoint: options.checkpoint, incremental: incremental !== undefined },
    'base backup requested (waits for the checkpoint)',
  );
  const { signal } = options;
  const aborted = (): AbortedError => new AbortedError(`unable to take base backup '${options.label}': aborted`);
  if (signal?.aborted) throw aborted();
  // The server aborts the backup itself when the connection goes away.
  const onAbort = (): void => conn.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (incremental) await conn.uploadManifest(incremental.parentManifest, options.label);
    await conn.baseBackup(command, options.label, (ev) => reader.handle(ev));
  } catch (err) {
    if (signal?.aborted) throw aborted();
    throw incremental ? classifyIncrementalError(err, options.label) : err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) throw aborted();
  const end = reader.finish();
  await sink.end(end);
  log.info({ lsn: formatLsn(end.endLsn), timeline: end.endTimeline, manifestBytes: reader.manifestBytes }, 'base backup received');
  return { ...end, serverVersionNum, manifestBytes: reader.manifestBytes };
}

/** The state machine over BASE_BACKUP's events; exported for its tests. */
export class BackupStreamReader {
  private results = 0;
  private start: PositionResult | undefined;
  private end: PositionResult | undefined;
  private tablespaces: TablespaceResultRow[] = [];
  private copies = 0;
  private inCopy = false;
  private tar: TarParser | undefined;
  private tarName = '';
  private inManifest = false;
  private readonly archivesSeen = new Set<number | null>();
  private received = 0;
  manifestBytes = 0;

  constructor(
    private readonly sink: BackupEntrySink,
    private readonly label: string,
    private readonly typedStream: boolean,
  ) {}

  async handle(ev: BaseBackupEvent): Promise<void> {
    switch (ev.kind) {
      case 'result':
        return this.result(ev.result);
      case 'copyStart':
        if (this.results !== 2 || this.inCopy) throw this.fail('a CopyOut stream started out of order');
        this.inCopy = true;
        this.copies++;
        if (this.typedStream && this.copies > 1) throw this.fail('a second CopyOut stream (PostgreSQL 15+ sends one)');
        if (!this.typedStream) this.startLegacyCopy();
        return;
      case 'copyData':
        if (!this.inCopy) throw this.fail('data outside a CopyOut stream');
        return this.typedStream ? this.typedData(ev.chunk, ev.first, ev.last) : this.legacyData(ev.chunk);
      case 'copyEnd':
        if (!this.inCopy) throw this.fail('CopyDone outside a CopyOut stream');
        this.inCopy = false;
        this.endArchive();
        return;
    }
  }

  /** After the command ended without error: everything must have arrived. */
  finish(): BackupEnd {
    if (!this.end) throw this.fail('the server sent no end position');
    const missing = this.tablespaces.filter((t) => !this.archivesSeen.has(t.oid)).map((t) => archiveName(t.oid));
    if (missing.length > 0) throw this.fail(`no archive for ${missing.join(', ')}`);
    if (this.manifestBytes === 0) throw this.fail('the server sent no backup_manifest');
    return { endLsn: this.end.lsn, endTimeline: this.end.timeline };
  }

  private async result(rs: Parameters<typeof parseTablespaceResult>[0]): Promise<void> {
    this.results++;
    if (this.results === 1) {
      this.start = parsePositionResult(rs, 'start');
    } else if (this.results === 2 && this.start) {
      this.tablespaces = parseTablespaceResult(rs);
      await this.sink.begin({ startLsn: this.start.lsn, startTimeline: this.start.timeline, tablespaces: this.tablespaces });
    } else if (this.results === 3 && !this.inCopy && this.copies > 0) {
      this.end = parsePositionResult(rs, 'end');
    } else {
      throw this.fail(`unexpected result set ${this.results} (${rs.columns.join(', ')})`);
    }
  }

  private startLegacyCopy(): void {
    const row = this.tablespaces[this.copies - 1];
    if (row) this.openArchive(row.oid, false);
    else if (this.copies === this.tablespaces.length + 1) this.inManifest = true;
    else throw this.fail(`unexpected CopyOut stream ${this.copies}`);
  }

  private async legacyData(chunk: Buffer): Promise<void> {
    this.received += chunk.length;
    this.sink.progress(this.received);
    if (this.tar) await this.tar.push(chunk);
    else await this.manifestData(chunk);
  }

  /**
   * One CopyData payload, or a piece of one (`first`/`last`): only archive and manifest data ('d')
   * messages are large enough to come in pieces; the rest of such a message is more of its data.
   */
  private async typedData(chunk: Buffer, first: boolean, last: boolean): Promise<void> {
    if (!first) return this.typedPayload(chunk);
    if (!last) {
      if (chunk[0] !== 0x64)
        throw this.fail(`a large message of type 0x${(chunk[0] ?? 0).toString(16).padStart(2, '0')} (only data is sent in pieces)`);
      return this.typedPayload(chunk.subarray(1));
    }
    const msg = parseCopyStreamMessage(chunk);
    switch (msg.kind) {
      case 'archive': {
        if (this.inManifest) throw this.fail(`archive '${msg.name}' after the manifest`);
        this.endArchive();
        const oid = tablespaceOfArchive(msg.name);
        const row = this.tablespaces.find((t) => t.oid === oid);
        if (!row) throw this.fail(`archive '${msg.name}' is not in the tablespace list`);
        if (msg.tablespacePath !== (row.location ?? '')) {
          throw this.fail(`archive '${msg.name}' is for '${msg.tablespacePath}', the tablespace list says '${row.location ?? ''}'`);
        }
        this.openArchive(oid, true);
        return;
      }
      case 'data':
        return this.typedPayload(msg.data);
      case 'progress':
        this.sink.progress(msg.bytesDone);
        return;
      case 'manifest':
        if (this.inManifest) throw this.fail('a second manifest');
        this.endArchive();
        this.inManifest = true;
        return;
    }
  }

  private typedPayload(data: Buffer): Promise<void> {
    if (this.tar) return this.tar.push(data);
    if (this.inManifest) return this.manifestData(data);
    throw this.fail('data before the first archive');
  }

  private openArchive(oid: number | null, requireTerminator: boolean): void {
    if (this.archivesSeen.has(oid)) throw this.fail(`archive ${archiveName(oid)} sent twice`);
    this.archivesSeen.add(oid);
    this.tarName = archiveName(oid);
    const sink = this.sink;
    this.tar = new TarParser(
      {
        entry: (e) => sink.entry(toEntryHeader(e, oid, this.tarName)),
        data: (c) => sink.data(c),
        entryEnd: () => sink.entryEnd(),
      },
      { archive: this.tarName, requireTerminator },
    );
  }

  private endArchive(): void {
    this.tar?.finish();
    this.tar = undefined;
  }

  private async manifestData(chunk: Buffer): Promise<void> {
    this.manifestBytes += chunk.length;
    await this.sink.manifest(chunk);
  }

  private fail(reason: string): ReplicationError {
    return new ReplicationError(`unable to take base backup '${this.label}': ${reason}`);
  }
}

function archiveName(oid: number | null): string {
  return oid === null ? 'base.tar' : `${oid}.tar`;
}

/**
 * Paths go to restore, which writes them under a target directory: only plain relative paths
 * pass ('..', '.', empty segments, absolute paths and backslashes are refused, whatever sent them).
 */
function toEntryHeader(e: TarEntry, tablespace: number | null, archive: string): Parameters<BackupEntrySink['entry']>[0] {
  // PostgreSQL names most members 'base/1/1259' but the emptied WAL directories './pg_wal/archive_status/';
  // it ends directory and symlink names with '/' (src/port/tar.c: links are always to directories).
  const relative = e.name.startsWith('./') ? e.name.slice(2) : e.name;
  const path = e.type !== 'file' && relative.endsWith('/') ? relative.slice(0, -1) : relative;
  const segments = path.split('/');
  if (path.includes('\\') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new ReplicationError(`unable to read base backup archive '${archive}': unsafe entry path '${e.name}'`);
  }
  return { type: e.type, tablespace, path, mode: e.mode, mtime: e.mtime, size: e.size, target: e.linkTarget };
}
