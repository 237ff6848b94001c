/**
 * Pure parts of the replication-protocol BASE_BACKUP command (PostgreSQL docs, "Streaming
 * Replication Protocol"; facts in ../shared/research/basebackup.md §1): the command text for both
 * syntax generations, the PG15+ typed CopyData payloads, the result sets around the data and the
 * page-checksum WARNINGs. No sockets here: connection.ts feeds messages in, source.ts drives.
 *
 *   PG15+ CopyData  'n' archive name\0 tablespace path\0   a new archive starts
 *                   'd' bytes...                            archive (or, after 'm', manifest) bytes
 *                   'p' u64 bytes done (big-endian)         progress
 *                   'm'                                     the manifest follows
 */
import { ReplicationError, UsageError } from '../../common/errors.js';
import { parseLsn, type Lsn } from '../../segment/lsn.js';
import { timeline as toTimeline, type Timeline } from '../../segment/timeline.js';

/** First server version with the option-list syntax and the single typed CopyOut stream. */
export const NEW_PROTOCOL_VERSION_NUM = 150000;
/** First server version with UPLOAD_MANIFEST and BASE_BACKUP (INCREMENTAL). */
export const INCREMENTAL_VERSION_NUM = 170000;
/** MAX_RATE bounds in kB/s (basebackup.c). */
export const MAX_RATE_MIN_KBPS = 32;
export const MAX_RATE_MAX_KBPS = 1_048_576;
/** basebackup.c refuses labels of MAXPGPATH (1024) bytes or more. */
const MAX_LABEL_BYTES = 1023;

export interface BaseBackupCommandOptions {
  readonly label: string;
  readonly checkpoint: 'fast' | 'spread';
  /** Server-side rate limit in kB/s; omitted = unlimited. */
  readonly maxRateKbps?: number;
  /** server_version_num of the server the command is for, e.g. 150004. */
  readonly serverVersionNum: number;
  /** PG17+: send only what changed since the manifest uploaded before on this connection. */
  readonly incremental?: boolean;
}

/**
 * Why these options and not others:
 * - WAIT false / NOWAIT: otherwise the server blocks after pg_backup_stop until the last segment is
 *   archived, forever when archive_command is broken; backup-push checks the archive itself, with
 *   a timeout and a named missing segment.
 * - No WAL: the archive holds the WAL; WAL in the tar would need wal_keep_size or a slot.
 * - MANIFEST 'yes' with SHA256: PostgreSQL's own per-file checksums are kept with the backup, so
 *   backup-verify and restore can check every file against what the server read.
 * - No TABLESPACE_MAP: then base.tar carries pg_tblspc/<oid> as symlink entries whose targets are
 *   the tablespace locations. Restore writes those links itself (pointing them at a remapped
 *   directory when asked) and PostgreSQL needs no tablespace_map rewrite at recovery start;
 *   pg_basebackup's plain format works the same way. The locations are also in the tablespace rows.
 * - Page checksums are verified (the default): failures fail the backup, naming the files.
 * - No server compression: the archive's codecs compress each file after parsing.
 */
export function baseBackupCommand(opts: BaseBackupCommandOptions): string {
  const label = quoteLabel(opts.label);
  const rate = opts.maxRateKbps === undefined ? undefined : checkRate(opts.maxRateKbps);
  if (!Number.isInteger(opts.serverVersionNum) || opts.serverVersionNum < 130000) {
    throw new UsageError(`unable to build BASE_BACKUP for server version ${opts.serverVersionNum}: PostgreSQL 13 or newer is needed`);
  }
  if (opts.incremental === true && opts.serverVersionNum < INCREMENTAL_VERSION_NUM) {
    throw new UsageError(
      `unable to build an incremental BASE_BACKUP for server version ${opts.serverVersionNum}: PostgreSQL 17 or newer is needed`,
    );
  }
  if (opts.serverVersionNum >= NEW_PROTOCOL_VERSION_NUM) {
    const list = [`LABEL ${label}`, 'PROGRESS', `CHECKPOINT '${opts.checkpoint === 'fast' ? 'fast' : 'spread'}'`, 'WAIT false'];
    if (rate !== undefined) list.push(`MAX_RATE ${rate}`);
    if (opts.incremental === true) list.push('INCREMENTAL');
    list.push("MANIFEST 'yes'", "MANIFEST_CHECKSUMS 'SHA256'", "TARGET 'client'");
    return `BASE_BACKUP (${list.join(', ')})`;
  }
  // PG13/14 keyword syntax; spread is the default there, so only FAST is spelled out.
  const words = [`LABEL ${label}`, 'PROGRESS'];
  if (opts.checkpoint === 'fast') words.push('FAST');
  words.push('NOWAIT');
  if (rate !== undefined) words.push(`MAX_RATE ${rate}`);
  words.push("MANIFEST 'yes'", "MANIFEST_CHECKSUMS 'SHA256'");
  return `BASE_BACKUP ${words.join(' ')}`;
}

/**
 * The replication scanner knows only '' inside quotes (no backslash escapes). Control characters
 * are refused because the label is copied verbatim into backup_label ("LABEL: %s\n"): a newline
 * would forge lines recovery reads.
 */
function quoteLabel(label: string): string {
  if (label.length === 0 || /[\u0000-\u001f\u007f]/.test(label)) {
    throw new UsageError(
      `unable to use backup label '${JSON.stringify(label).slice(1, -1)}': it must be non-empty without control characters`,
    );
  }
  if (Buffer.byteLength(label, 'utf8') > MAX_LABEL_BYTES) {
    throw new UsageError(`unable to use backup label '${label.slice(0, 40)}...': longer than ${MAX_LABEL_BYTES} bytes`);
  }
  return `'${label.replace(/'/g, "''")}'`;
}

function checkRate(kbps: number): number {
  if (!Number.isInteger(kbps) || kbps < MAX_RATE_MIN_KBPS || kbps > MAX_RATE_MAX_KBPS) {
    throw new UsageError(`unable to use max rate '${kbps}' kB/s: PostgreSQL accepts ${MAX_RATE_MIN_KBPS} to ${MAX_RATE_MAX_KBPS}`);
  }
  return kbps;
}

export type CopyStreamMessage =
  | { readonly kind: 'archive'; readonly name: string; readonly tablespacePath: string }
  /** A view into the received chunk: only valid until the handler returns. */
  | { readonly kind: 'data'; readonly data: Buffer }
  | { readonly kind: 'progress'; readonly bytesDone: number }
  | { readonly kind: 'manifest' };

/** Parses one PG15+ BASE_BACKUP CopyData payload. Throws ReplicationError on anything malformed. */
export function parseCopyStreamMessage(buf: Buffer): CopyStreamMessage {
  if (buf.length === 0) throw new ReplicationError('unable to parse base backup message: empty CopyData');
  const type = String.fromCharCode(buf[0] as number);
  switch (type) {
    case 'd':
      return { kind: 'data', data: buf.subarray(1) };
    case 'p': {
      if (buf.length !== 9) throw new ReplicationError(`unable to parse base backup progress: ${buf.length} bytes, expected 9`);
      const done = buf.readBigUInt64BE(1);
      if (done > BigInt(Number.MAX_SAFE_INTEGER))
        throw new ReplicationError(`unable to parse base backup progress: ${done} bytes is out of range`);
      return { kind: 'progress', bytesDone: Number(done) };
    }
    case 'm':
      if (buf.length !== 1) throw new ReplicationError(`unable to parse base backup manifest start: ${buf.length} bytes, expected 1`);
      return { kind: 'manifest' };
    case 'n': {
      const nameEnd = buf.indexOf(0, 1);
      const pathEnd = nameEnd < 0 ? -1 : buf.indexOf(0, nameEnd + 1);
      if (pathEnd < 0 || pathEnd !== buf.length - 1) {
        throw new ReplicationError('unable to parse base backup archive start: expected two NUL-terminated strings');
      }
      return { kind: 'archive', name: buf.toString('utf8', 1, nameEnd), tablespacePath: buf.toString('utf8', nameEnd + 1, pathEnd) };
    }
    default:
      throw new ReplicationError(`unable to parse base backup message: unknown type 0x${(buf[0] as number).toString(16).padStart(2, '0')}`);
  }
}

/**
 * `base.tar` is the data directory (null), `<oid>.tar` a tablespace. Anything else (a compressed
 * `.tar.gz`, a path) is refused: we never ask for server compression and never write the name.
 */
export function tablespaceOfArchive(name: string): number | null {
  if (name === 'base.tar') return null;
  const m = /^([1-9][0-9]{0,9})\.tar$/.exec(name);
  if (!m || Number(m[1]) > 0xffff_ffff)
    throw new ReplicationError(`unable to read base backup archive '${name}': not base.tar or <oid>.tar`);
  return Number(m[1]);
}

/** One result set of the command as received: column names and text values. */
export interface ResultSet {
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>;
}

export interface PositionResult {
  readonly lsn: Lsn;
  readonly timeline: Timeline;
}

/** The start and end result sets: one row, columns recptr (text LSN) and tli. */
export function parsePositionResult(rs: ResultSet, what: 'start' | 'end'): PositionResult {
  const row = rs.rows[0];
  const [lsnText, tliText] = [row?.[rs.columns.indexOf('recptr')], row?.[rs.columns.indexOf('tli')]];
  if (rs.rows.length !== 1 || typeof lsnText !== 'string' || typeof tliText !== 'string' || !/^[0-9]+$/.test(tliText)) {
    throw new ReplicationError(`unable to read base backup ${what} position: unexpected result (${rs.columns.join(', ')})`);
  }
  return { lsn: parseLsn(lsnText), timeline: toTimeline(Number(tliText)) };
}

export interface TablespaceResultRow {
  readonly oid: number | null;
  readonly location: string | null;
  readonly sizeBytes: number | null;
}

/** The tablespace header: spcoid, spclocation, size (kB, NULL without PROGRESS); data directory last with NULL oid. */
export function parseTablespaceResult(rs: ResultSet): TablespaceResultRow[] {
  const [iOid, iLoc, iSize] = ['spcoid', 'spclocation', 'size'].map((c) => rs.columns.indexOf(c)) as [number, number, number];
  if (iOid < 0 || iLoc < 0 || iSize < 0) {
    throw new ReplicationError(`unable to read base backup tablespaces: unexpected columns (${rs.columns.join(', ')})`);
  }
  const rows = rs.rows.map((r) => {
    const oid = r[iOid] ?? null;
    const size = r[iSize] ?? null;
    if ((oid !== null && !/^[1-9][0-9]*$/.test(oid)) || (size !== null && !/^[0-9]+$/.test(size))) {
      throw new ReplicationError(`unable to read base backup tablespaces: bad row (${r.join(', ')})`);
    }
    return { oid: oid === null ? null : Number(oid), location: r[iLoc] ?? null, sizeBytes: size === null ? null : Number(size) * 1024 };
  });
  const dataDirs = rows.filter((r) => r.oid === null).length;
  if (dataDirs !== 1 || rows[rows.length - 1]?.oid !== null) {
    throw new ReplicationError('unable to read base backup tablespaces: the data directory must be the last row, once');
  }
  return rows;
}

/**
 * Files named by page-checksum WARNINGs (`checksum verification failed in file "./base/1/2",
 * block 3: ...` and `file "./base/1/2" has a total of 7 checksum verification failures`), in order,
 * once each. The name is taken from the first double-quoted part so that translated messages
 * (lc_messages) still name the file; a WARNING without one is quoted whole. Without any English
 * checksum WARNING, every WARNING counts (better one name too many than none).
 */
export function checksumFailureFiles(warnings: readonly string[]): string[] {
  // Other WARNINGs ("skipping special file ...") name files too; English ones are told apart.
  const about = warnings.filter((w) => /checksum/i.test(w));
  const files: string[] = [];
  for (const w of about.length > 0 ? about : warnings) {
    const name = /"([^"]+)"/.exec(w)?.[1] ?? w;
    const clean = name.startsWith('./') ? name.slice(2) : name;
    if (!files.includes(clean)) files.push(clean);
  }
  return files;
}
