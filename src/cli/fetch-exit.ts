/**
 * The restore_command exit-code contract, as data. PostgreSQL reads any exit code up to 125 as "no
 * such file" (end of archive recovery: a point-in-time recovery promotes there) and anything above
 * 125 as fatal (recovery stops; fix and restart, it resumes where it was). So 1 is given only for a
 * proven absence, and every failure that proves nothing follows `fetch-unavailable`.
 */
import { CommanderError } from 'commander';
import {
  ArchiveMismatchError,
  ConfigError,
  CryptoError,
  ExitCode,
  IntegrityError,
  InvalidNameError,
  InvalidWalError,
  NotInArchiveError,
  TimelineError,
  UsageError,
} from '../common/errors.js';

export type FetchOutcome =
  /** The file was restored and verified. */
  | 'restored'
  /** An archive with an intact identity record (of this cluster, when known) lacks the file. */
  | 'not-in-archive'
  /** Something exists but cannot be proven intact or ours: checksum, decryption, wrong cluster. */
  | 'integrity'
  /** The archive or the local disk could not be used (unreachable, empty directory, disk full). */
  | 'unavailable'
  /** Wrong arguments or settings: the answer says nothing about the archive. */
  | 'misconfigured';

export type FetchUnavailable = 'auto' | 'abort' | 'retry';

const FETCH_UNAVAILABLE_VALUES: readonly FetchUnavailable[] = ['auto', 'abort', 'retry'];

/**
 * The exit code for one outcome. `standby`: standby.signal exists in the data directory.
 * `notFoundCode` is what "not in the archive" is spelled as (the launcher asks for 81 so that it can
 * tell the program's answer from node's own exit 1 on a crash).
 */
export function restoreExitCode(
  outcome: FetchOutcome,
  standby: boolean,
  setting: FetchUnavailable,
  notFoundCode: number = ExitCode.notFound,
): number {
  switch (outcome) {
    case 'restored':
      return ExitCode.ok;
    case 'not-in-archive':
      return notFoundCode;
    case 'integrity':
      return ExitCode.integrity;
    case 'unavailable':
    case 'misconfigured': {
      // A standby must survive a short outage (it retries, or streams meanwhile); a point-in-time
      // recovery must not end early and promote on a hole in the WAL.
      const retry = setting === 'retry' || (setting === 'auto' && standby);
      return retry ? ExitCode.failure : ExitCode.integrity;
    }
  }
}

/** Which outcome a thrown error is. Anything not known to prove something is `unavailable`. */
export function fetchOutcomeOf(err: unknown): FetchOutcome {
  if (err instanceof NotInArchiveError) return 'not-in-archive';
  if (
    err instanceof IntegrityError ||
    err instanceof ArchiveMismatchError ||
    err instanceof CryptoError ||
    err instanceof InvalidWalError ||
    err instanceof TimelineError
  ) {
    return 'integrity';
  }
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof InvalidNameError || err instanceof CommanderError) {
    return 'misconfigured';
  }
  return 'unavailable';
}

/** A valid `fetch-unavailable` value, or undefined. */
export function parseFetchUnavailable(value: unknown): FetchUnavailable | undefined {
  const s = typeof value === 'string' ? value.trim() : undefined;
  return FETCH_UNAVAILABLE_VALUES.find((v) => v === s);
}
