/**
 * The seam between reading a base backup from the server (src/postgres/replication/base-backup.ts
 * and tar.ts turn BASE_BACKUP's CopyOut stream into entries) and storing it (packer.ts). Every
 * method returns a promise and the source awaits it before it reads more from the socket: that is
 * the backpressure that keeps memory bounded whatever the database size.
 *
 * Call order: begin, then for each tar member entry (+ data* + entryEnd for files), then manifest*
 * (when the server sends one), then end. A failure anywhere rejects the source's promise; the sink
 * is then abandoned (no end call).
 */
import type { Lsn } from '../segment/lsn.js';

export interface BackupStart {
  readonly startLsn: Lsn;
  readonly startTimeline: number;
  /** One per tablespace in the server's order; the data directory is last, with oid null. */
  readonly tablespaces: readonly TablespaceRow[];
}

export interface TablespaceRow {
  readonly oid: number | null;
  readonly location: string | null;
  /** Size estimate in bytes (the server reports kB), null unless PROGRESS was asked. */
  readonly sizeBytes: number | null;
}

export interface EntryHeader {
  readonly type: 'file' | 'dir' | 'link';
  /** null for the data directory (base.tar), else the tablespace oid (<oid>.tar). */
  readonly tablespace: number | null;
  /** Relative, '/'-separated, without a trailing slash for directories. */
  readonly path: string;
  readonly mode: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** Bytes that follow in data() calls for a file; 0 otherwise. */
  readonly size: number;
  /** Link target, null otherwise. */
  readonly target: string | null;
}

export interface BackupEnd {
  readonly endLsn: Lsn;
  readonly endTimeline: number;
}

export interface BackupEntrySink {
  begin(start: BackupStart): Promise<void>;
  entry(header: EntryHeader): Promise<void>;
  /** The next bytes of the current file; `chunk` is only valid during the call (copy to keep it). */
  data(chunk: Buffer): Promise<void>;
  /** All `size` bytes of the current file were delivered. */
  entryEnd(): Promise<void>;
  /** The next bytes of PostgreSQL's backup_manifest. */
  manifest(chunk: Buffer): Promise<void>;
  /** Uncompressed bytes the server has sent so far (progress display). */
  progress(doneBytes: number): void;
  end(end: BackupEnd): Promise<void>;
}
