/**
 * wal-verify between argv and the library: its flags as verify options (a bad value is a usage
 * error), the verified-objects record the settings point to, the progress display, and the exit
 * code of a report.
 */
import { verifiedRecordPath } from '../archive/catalog/verified-record.js';
import { ExitCode } from '../common/errors.js';
import type { VerifyOptions, VerifyReport } from '../ops/verify.js';
import { intArg, lsnArg, timelineArg } from './args.js';

export interface WalVerifyFlags {
  readonly timeline?: string;
  readonly from?: string;
  readonly to?: string;
  readonly deep?: boolean;
  readonly recheck?: boolean;
  readonly parallel?: string;
  readonly json?: boolean;
}

/** Problems found: above 125 like every integrity failure, so scripts and restore tooling stop. */
const VERIFY_PROBLEMS_EXIT = ExitCode.integrity;
const DEFAULT_PARALLEL = 4;

/** The verify options the flags ask for, checked before the archive is opened. */
export function walVerifyOptions(f: WalVerifyFlags): VerifyOptions {
  const timeline = timelineArg(f.timeline);
  const from = lsnArg('--from', f.from);
  const to = lsnArg('--to', f.to);
  return {
    ...(timeline !== undefined ? { timeline } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    deep: f.deep === true,
    recheck: f.recheck === true,
    parallel: intArg('--parallel', f.parallel, 1, 256) ?? DEFAULT_PARALLEL,
  };
}

/** The verified-objects record the `verify-record` setting names for this archive (keyed by its description). */
export function verifyRecordOption(setting: string, archive: string): { recordPath?: string } {
  const recordPath = verifiedRecordPath(setting, archive);
  return recordPath !== undefined ? { recordPath } : {};
}

export function walVerifyExitCode(report: VerifyReport): number {
  return report.problems.length === 0 ? ExitCode.ok : VERIFY_PROBLEMS_EXIT;
}

/** `--json`: the report with `ok`, which scripts test first. */
export function walVerifyJson(report: VerifyReport): string {
  return JSON.stringify({ ok: report.problems.length === 0, ...report }, null, 2);
}
