/**
 * One error hierarchy for the whole program. Library code throws these; only src/cli maps them to
 * process exit codes. Messages follow one grammar: `unable to <verb> <thing> '<name>': <reason>`.
 */

/** Process exit codes. Documented in README.md ("Exit codes"); tested in test/unit/common/errors.test.ts. */
export const ExitCode = {
  ok: 0,
  /** wal-fetch only: the archive definitely does not hold the requested file. */
  notFound: 1,
  /** Wrong arguments, unknown or malformed configuration. */
  usage: 2,
  /** Any other failure (storage unreachable, I/O error, ...). PostgreSQL retries archive_command. */
  failure: 3,
  /** The archive already holds different content under that name, or the file belongs elsewhere. */
  conflict: 4,
  /**
   * Integrity failure (checksum, decryption, wrong cluster, bad WAL). Above 125 on purpose: for
   * restore_command PostgreSQL treats any code above 125 as fatal and aborts recovery instead of
   * taking the failure for "end of archive" and promoting on a hole in the WAL.
   */
  integrity: 128,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

const brand = Symbol.for('walvault.error');

export interface ErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

export class WalvaultError extends Error {
  readonly code: string = 'WV_ERR_FAILURE';
  readonly exitCode: number = ExitCode.failure;
  readonly retryable: boolean;
  readonly [brand] = true;

  constructor(message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }

  /** Works across duplicate copies of this module (e.g. a bundled and an unbundled one). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== WalvaultError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

export class UsageError extends WalvaultError {
  override readonly code = 'WV_ERR_USAGE';
  override readonly exitCode = ExitCode.usage;
}

export class ConfigError extends WalvaultError {
  override readonly code = 'WV_ERR_CONFIG';
  override readonly exitCode = ExitCode.usage;
}

/** The object or file definitely does not exist (a successful lookup said so). */
export class NotFoundError extends WalvaultError {
  override readonly code = 'WV_ERR_NOT_FOUND';
  override readonly exitCode = ExitCode.notFound;
}

/**
 * The answer restore_command may turn into exit 1: an archive whose identity record was read (and
 * matches the cluster being restored, when known) was listed and holds no such file. Any other
 * NotFoundError (an empty directory, an object gone mid-read) proves nothing about the archive.
 */
export class NotInArchiveError extends NotFoundError {}

/** A name that is not a WAL segment, history, partial or backup-label file name. */
export class InvalidNameError extends WalvaultError {
  override readonly code = 'WV_ERR_INVALID_NAME';
  override readonly exitCode = ExitCode.usage;
}

/** Bytes that are not valid WAL (bad magic, broken page chain, truncated, ...). */
export class InvalidWalError extends WalvaultError {
  override readonly code = 'WV_ERR_INVALID_WAL';
  override readonly exitCode = ExitCode.integrity;
}

/** A timeline history file that cannot be parsed, or a timeline question it cannot answer. */
export class TimelineError extends WalvaultError {
  override readonly code = 'WV_ERR_TIMELINE';
  override readonly exitCode = ExitCode.integrity;
}

/** Reconstructed bytes do not match the recorded SHA-256 / authentication tag / size. */
export class IntegrityError extends WalvaultError {
  override readonly code = 'WV_ERR_INTEGRITY';
  override readonly exitCode = ExitCode.integrity;
}

/** The file belongs to another cluster (system id) or has another segment size than the archive. */
export class ArchiveMismatchError extends WalvaultError {
  override readonly code = 'WV_ERR_ARCHIVE_MISMATCH';
  override readonly exitCode = ExitCode.integrity;
}

/** The archive already holds *different* content under the same name; nothing was overwritten. */
export class ArchiveDuplicateError extends WalvaultError {
  override readonly code = 'WV_ERR_ARCHIVE_DUPLICATE';
  override readonly exitCode = ExitCode.conflict;
}

/** Storage backend failure (network, permissions, disk full, ...). `retryable` says whether a retry may help. */
export class StorageError extends WalvaultError {
  override readonly code = 'WV_ERR_STORAGE';
  override readonly exitCode = ExitCode.failure;
}

/** Encryption key missing, malformed, or of the wrong id for an object. */
export class CryptoError extends WalvaultError {
  override readonly code = 'WV_ERR_CRYPTO';
  override readonly exitCode = ExitCode.integrity;
}

/** Replication protocol violation or unexpected server answer. */
export class ReplicationError extends WalvaultError {
  override readonly code = 'WV_ERR_REPLICATION';
  override readonly exitCode = ExitCode.failure;
}

/**
 * The server refused a base backup's content: page checksum failures (SQLSTATE XX001 after all
 * data was sent). The data files are damaged on the server; no retry can fix it, hence integrity.
 */
export class BackupError extends WalvaultError {
  override readonly code = 'WV_ERR_BACKUP_CORRUPT';
  override readonly exitCode = ExitCode.integrity;
}

/** A plain SQL session with PostgreSQL (check, status) failed; not the replication protocol. */
export class PostgresError extends WalvaultError {
  override readonly code = 'WV_ERR_POSTGRES';
  override readonly exitCode = ExitCode.failure;
}

/** Local file-system failure outside the storage backend (reading %p, writing the destination, ...). */
export class LocalIoError extends WalvaultError {
  override readonly code = 'WV_ERR_LOCAL_IO';
  override readonly exitCode = ExitCode.failure;
}

/** Operation cancelled through an AbortSignal (shutdown). */
export class AbortedError extends WalvaultError {
  override readonly code = 'WV_ERR_ABORTED';
  override readonly exitCode = ExitCode.failure;
}

/**
 * A value outside its domain met by the pure core (src/segment): an LSN, a timeline ID. What it
 * means depends on where the value came from, so callers map it: the CLI turns one from the
 * operator's own arguments into a UsageError (exit 2, see `asUsageError`); one that came from a
 * server or a stored file stays a plain failure (exit 3), because no flag the operator could change
 * would fix it.
 */
export class DomainError extends WalvaultError {
  override readonly code: string = 'WV_ERR_DOMAIN';
  override readonly exitCode = ExitCode.failure;
}

/** Text that is not an LSN, or arithmetic that leaves 0/0 to FFFFFFFF/FFFFFFFF. */
export class InvalidLsnError extends DomainError {
  override readonly code: string = 'WV_ERR_INVALID_LSN';
}

/** A timeline ID outside 1 to 0xFFFFFFFF. */
export class InvalidTimelineError extends DomainError {
  override readonly code: string = 'WV_ERR_INVALID_TIMELINE';
}

/**
 * For input the operator typed: a DomainError becomes a UsageError with the same message (the
 * original stays as its cause); anything else is returned unchanged.
 */
export function asUsageError(err: unknown): unknown {
  return err instanceof DomainError ? new UsageError(err.message, { cause: err }) : err;
}

/**
 * SQLSTATE codes walvault reacts to (PostgreSQL docs, appendix A "Error Codes"). Classifying by
 * code, never by message text, keeps working with a server whose lc_messages is not English.
 */
export const SqlState = {
  /** 42710 duplicate_object: CREATE_REPLICATION_SLOT for a slot that already exists. */
  duplicateObject: '42710',
  /** 53300 too_many_connections: max_wal_senders / max_connections reached; passes by itself. */
  tooManyConnections: '53300',
  /** 28000 invalid_authorization_specification (e.g. no pg_hba.conf entry). */
  invalidAuthorization: '28000',
  /** 28P01 invalid_password. */
  invalidPassword: '28P01',
  /** 42501 insufficient_privilege (e.g. a role without REPLICATION). */
  insufficientPrivilege: '42501',
  /** 57P03 cannot_connect_now: the server is starting up or shutting down. */
  cannotConnectNow: '57P03',
} as const;

/** The SQLSTATE a PostgreSQL server sent with an error (node-postgres puts it in `code`), if any. */
export function sqlStateOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    // Node's own codes (EPIPE, EPERM) are five letters too; no SQLSTATE class starts with E.
    if (typeof code === 'string' && /^(?!E)[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Server errors that no retry can fix: authentication and privilege failures (class 28, 42501).
 * Connection exceptions (class 08), operator intervention (class 57: shutdown, restart) and
 * insufficient resources (class 53: too many connections) pass by themselves.
 */
export function isPgRefusal(sqlState: string | undefined): boolean {
  if (sqlState === undefined) return false;
  return sqlState.startsWith('28') || sqlState === SqlState.insufficientPrivilege;
}

/** Short human reason for a Node system error or anything else thrown. */
export function describeCause(err: unknown): string {
  if (err instanceof WalvaultError) return err.message;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = err.message || err.name;
    return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
  }
  return String(err);
}

/** Exit code for anything thrown: ours carry it, anything else is a generic failure. */
export function exitCodeOf(err: unknown): number {
  return err instanceof WalvaultError ? err.exitCode : ExitCode.failure;
}

/** A create-only put (`ifAbsent`) found the key already present; nothing was replaced. */
export class ObjectExistsError extends WalvaultError {
  override readonly code = 'WV_ERR_OBJECT_EXISTS';
  override readonly exitCode = ExitCode.conflict;
}

/** A storage key that breaks the key rules ('..', absolute, empty segment, backslash, NUL, ...): a bug. */
export class InvalidKeyError extends WalvaultError {
  override readonly code = 'WV_ERR_INVALID_KEY';
  override readonly exitCode = ExitCode.failure;
}

/**
 * The archive holds WAL but no readable identity record (deleted, or every copy damaged): nothing
 * may be archived until the identity is restored or rebuilt, or a foreign cluster's WAL would be
 * accepted and a new identity naming it written over an archive full of the first cluster's WAL.
 */
export class IdentityLostError extends WalvaultError {
  override readonly code = 'WV_ERR_IDENTITY_LOST';
  override readonly exitCode = ExitCode.conflict;
}
