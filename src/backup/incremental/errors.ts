/**
 * Why the server would not take an incremental backup, as one typed error. backup-push
 * `--incremental=auto` takes a full backup instead when `isIncrementalUnavailable(err)`; with
 * `--incremental` it stops with the reason. The server's texts (basebackup.c,
 * basebackup_incremental.c, PostgreSQL 17) are matched in English: with a translated lc_messages
 * the SQLSTATE 55000 (object not in prerequisite state) still marks it, as `reason: 'other'`.
 */
import { ExitCode, WalvaultError, describeCause, sqlStateOf } from '../../common/errors.js';

export type IncrementalUnavailableReason =
  /** No complete backup of this cluster (or not the one named) to build on. */
  | 'no-parent'
  /** summarize_wal = off on the server. */
  | 'summarize-wal-off'
  /** The WAL summaries do not reach back to the parent's start (removed, or summarization was off meanwhile). */
  | 'summaries-missing'
  /** The parent's manifest is version 1 (PostgreSQL 13-16) or missing, or the server is older than 17. */
  | 'parent-unsupported'
  /** The parent's manifest is of another cluster (system identifier). */
  | 'other-system'
  /** The parent's timelines are not in this server's history, or do not line up with it. */
  | 'timeline'
  | 'other';

/**
 * Exit code 3 (failure), code WV_ERR_INCREMENTAL_UNAVAILABLE: nothing is wrong with the archive;
 * a full backup (or `--incremental=auto`) works.
 */
export class IncrementalUnavailableError extends WalvaultError {
  override readonly code = 'WV_ERR_INCREMENTAL_UNAVAILABLE';
  override readonly exitCode = ExitCode.failure;
  constructor(
    message: string,
    readonly reason: IncrementalUnavailableReason,
    options?: { cause?: unknown },
  ) {
    super(message, { ...options, retryable: false });
  }
}

export function isIncrementalUnavailable(err: unknown): err is IncrementalUnavailableError {
  return err instanceof IncrementalUnavailableError;
}

const PATTERNS: ReadonlyArray<readonly [RegExp, IncrementalUnavailableReason, string]> = [
  [/WAL summarization is enabled/, 'summarize-wal-off', 'summarize_wal is off on the server'],
  [
    /WAL summaries are required|WAL summarization is not progressing/,
    'summaries-missing',
    'the WAL summaries do not cover the time since the parent backup',
  ],
  [/manifest version 1 does not support incremental/, 'parent-unsupported', 'the parent backup is from PostgreSQL older than 17'],
  [/system identifier in backup manifest is/, 'other-system', 'the parent backup is of another cluster'],
  [/timeline \d+ found in manifest|manifest requires WAL from/, 'timeline', "the parent backup's timelines do not lead to this server's"],
];

/** Turns a server refusal of UPLOAD_MANIFEST or BASE_BACKUP (INCREMENTAL) into the typed error; anything else is returned as is. */
export function classifyIncrementalError(err: unknown, label: string): unknown {
  const server = serverMessage(err);
  if (server === undefined) return err;
  for (const [pattern, reason, what] of PATTERNS) {
    if (pattern.test(server)) return unavailable(label, reason, `${what} (${server})`, err);
  }
  if (sqlStateOf(err) === '55000') return unavailable(label, 'other', server, err);
  return err;
}

function unavailable(label: string, reason: IncrementalUnavailableReason, why: string, cause: unknown): IncrementalUnavailableError {
  return new IncrementalUnavailableError(`unable to take incremental backup '${label}': ${why}`, reason, { cause });
}

/** The message of the PostgreSQL error under our wrappers, if the server sent one. */
function serverMessage(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    if (typeof (e as { severity?: unknown }).severity === 'string') return describeCause(e);
  }
  return undefined;
}
