/**
 * WAL file names as PostgreSQL writes them in pg_wal and hands them to archive_command and
 * restore_command (%f).
 *
 * Only uppercase hex is accepted. PostgreSQL writes uppercase and itself recognises only
 * uppercase (IsXLogFileName uses strspn over "0123456789ABCDEF"), so a lowercase name never comes
 * from the server; and archive keys are case-sensitive, so accepting `...00a` next to `...00A`
 * would let one segment exist under two keys and defeat the "never store two different copies"
 * rule. Such a name is rejected with a reason that says why.
 */
import { InvalidNameError, UsageError } from '../common/errors.js';
import { quoteExcerpt } from '../common/quote.js';
import { addLsn, formatLsn, lsn, MAX_LSN, type Lsn } from './lsn.js';
import { assertSegSize, formatSegSize, segmentsPerXLogId } from './segsize.js';
import { formatTimelineHex, timeline, type Timeline } from './timeline.js';

export const SEGMENT_NAME_LENGTH = 24;

function hex8(value: number): string {
  return value.toString(16).toUpperCase().padStart(8, '0');
}

/** Index of the last segment of the 64-bit WAL address space for a segment size. */
export function maxSegno(segSize: number): bigint {
  return MAX_LSN / BigInt(assertSegSize(segSize));
}

/** XLByteToSeg: the segment number holding `position`. */
export function segnoOfLsn(position: Lsn, segSize: number): bigint {
  return position / BigInt(assertSegSize(segSize));
}

/** XLogSegNoOffsetToRecPtr(segno, 0): the first byte of segment `segno`. */
export function segmentStartLsn(segno: bigint, segSize: number): Lsn {
  checkSegno(segno, segSize);
  return lsn(segno * BigInt(segSize));
}

function checkSegno(segno: bigint, segSize: number): void {
  const max = maxSegno(segSize);
  if (segno < 0n || segno > max) {
    throw new UsageError(
      `unable to use segment number '${String(segno)}': outside 0 to ${String(max)} for ${formatSegSize(segSize)} segments`,
    );
  }
}

function toSegno(value: bigint | number): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new UsageError(`unable to use segment number '${String(value)}': not an integer; pass a bigint`);
  }
  return BigInt(value);
}

/**
 * One WAL segment: (timeline, segment number) at a given segment size. Immutable; `name` is the
 * 24-character file name `TTTTTTTTXXXXXXXXYYYYYYYY`.
 */
export class SegmentName {
  readonly timeline: Timeline;
  readonly segno: bigint;
  readonly segSize: number;
  readonly name: string;

  private constructor(tli: Timeline, segno: bigint, segSize: number) {
    this.timeline = tli;
    this.segno = segno;
    this.segSize = segSize;
    const perId = BigInt(segmentsPerXLogId(segSize));
    this.name = formatTimelineHex(tli) + hex8(Number(segno / perId)) + hex8(Number(segno % perId));
  }

  static of(tli: Timeline | number, segno: bigint | number, segSize: number): SegmentName {
    const checkedTli = timeline(tli);
    const n = toSegno(segno);
    checkSegno(n, segSize);
    return new SegmentName(checkedTli, n, segSize);
  }

  /** The segment on `tli` that holds `position` (XLByteToSeg + XLogFileName). */
  static fromLsn(tli: Timeline | number, position: Lsn, segSize: number): SegmentName {
    return SegmentName.of(tli, segnoOfLsn(position, segSize), segSize);
  }

  /** Parses a plain 24-character segment name; anything else (also `.partial`) is rejected. */
  static parse(name: string, segSize: number): SegmentName {
    const parsed = parseWalFileName(name, segSize);
    if (parsed.kind !== 'segment') {
      throw nameError(name, `a ${parsed.kind} file name, not a WAL segment name`);
    }
    return parsed.segment;
  }

  /** The middle name field (XXXXXXXX): segno / (2^32 / segSize). */
  get logId(): number {
    return Number(this.segno / BigInt(segmentsPerXLogId(this.segSize)));
  }

  /** The last name field (YYYYYYYY): segno % (2^32 / segSize). */
  get segLow(): number {
    return Number(this.segno % BigInt(segmentsPerXLogId(this.segSize)));
  }

  get startLsn(): Lsn {
    return lsn(this.segno * BigInt(this.segSize));
  }

  /** The segment's last byte (inclusive; the end of the last segment, 2^64, has no Lsn). */
  get lastLsn(): Lsn {
    return addLsn(this.startLsn, this.segSize - 1);
  }

  get partialName(): string {
    return `${this.name}.partial`;
  }

  contains(position: Lsn): boolean {
    return position >= this.startLsn && position <= this.lastLsn;
  }

  /** Byte offset of `position` inside this segment (XLogSegmentOffset). */
  offsetOf(position: Lsn): number {
    if (!this.contains(position)) {
      throw new UsageError(
        `unable to locate LSN '${formatLsn(position)}' in segment '${this.name}': the segment holds ${formatLsn(this.startLsn)} to ${formatLsn(this.lastLsn)}`,
      );
    }
    return Number(position - this.startLsn);
  }

  next(): SegmentName {
    if (this.segno === maxSegno(this.segSize)) {
      throw new UsageError(`unable to advance past segment '${this.name}': it is the last segment of the WAL address space`);
    }
    return new SegmentName(this.timeline, this.segno + 1n, this.segSize);
  }

  previous(): SegmentName {
    if (this.segno === 0n) {
      throw new UsageError(`unable to step back from segment '${this.name}': it is the first segment`);
    }
    return new SegmentName(this.timeline, this.segno - 1n, this.segSize);
  }

  withTimeline(tli: Timeline | number): SegmentName {
    return new SegmentName(timeline(tli), this.segno, this.segSize);
  }

  equals(other: SegmentName): boolean {
    return this.timeline === other.timeline && this.segno === other.segno && this.segSize === other.segSize;
  }

  /** File-name order: by timeline, then segment number (what sorting the names as strings gives). */
  static compare(a: SegmentName, b: SegmentName): -1 | 0 | 1 {
    if (a.timeline !== b.timeline) return a.timeline < b.timeline ? -1 : 1;
    return a.segno < b.segno ? -1 : a.segno > b.segno ? 1 : 0;
  }

  toString(): string {
    return this.name;
  }

  toJSON(): string {
    return this.name;
  }
}

export function segmentFileName(tli: Timeline | number, segno: bigint | number, segSize: number): string {
  return SegmentName.of(tli, segno, segSize).name;
}

/** XLogFileName for the segment holding `position`. */
export function segmentFileNameForLsn(tli: Timeline | number, position: Lsn, segSize: number): string {
  return SegmentName.fromLsn(tli, position, segSize).name;
}

export function historyFileName(tli: Timeline | number): string {
  return `${formatTimelineHex(timeline(tli))}.history`;
}

/** XLogBackupHistoryFileName: `<segment>.<offset of the backup start in it>.backup`. */
export function backupHistoryFileName(tli: Timeline | number, backupStart: Lsn, segSize: number): string {
  const segment = SegmentName.fromLsn(tli, backupStart, segSize);
  return `${segment.name}.${hex8(segment.offsetOf(backupStart))}.backup`;
}

interface SegmentFields {
  name: string;
  timeline: Timeline;
  /** Middle name field (XXXXXXXX). */
  logId: number;
  /** Last name field (YYYYYYYY); its legal range depends on the segment size. */
  segLow: number;
}

/** What a WAL file name says on its own, without knowing the segment size. */
export type ClassifiedWalFileName =
  | ({ kind: 'segment' } & SegmentFields)
  | ({ kind: 'partial' } & SegmentFields)
  | ({ kind: 'backup'; offset: number } & SegmentFields)
  | { kind: 'history'; name: string; timeline: Timeline };

/** A WAL file name resolved against a segment size. */
export type ParsedWalFileName =
  | { kind: 'segment'; name: string; timeline: Timeline; segment: SegmentName }
  | { kind: 'partial'; name: string; timeline: Timeline; segment: SegmentName }
  | { kind: 'backup'; name: string; timeline: Timeline; segment: SegmentName; offset: number; backupStart: Lsn }
  | { kind: 'history'; name: string; timeline: Timeline };

export type WalFileKind = ClassifiedWalFileName['kind'];

function nameError(name: string, reason: string): InvalidNameError {
  return new InvalidNameError(`unable to parse WAL file name ${quoteExcerpt(name, 80)}: ${reason}`);
}

/** Why `text` is not `digits` uppercase hex digits, or undefined when it is. */
function hexProblem(text: string, digits: number, what: string): string | undefined {
  if (text.length !== digits) {
    return `${what} must be ${String(digits)} hexadecimal digits, found ${String(text.length)} characters`;
  }
  const bad = /[^0-9A-Fa-f]/.exec(text);
  if (bad !== null) {
    return `${what} must be ${String(digits)} hexadecimal digits, found '${bad[0]}' at position ${String(bad.index + 1)}`;
  }
  if (/[a-f]/.test(text)) {
    return `${what} must use uppercase hexadecimal digits, as PostgreSQL writes WAL file names`;
  }
  return undefined;
}

const BACKUP_SUFFIX = /^\.[^.]*\.backup$/;

/** Classifies a WAL file name without knowing the segment size; throws InvalidNameError for anything else. */
export function classifyWalFileName(name: string): ClassifiedWalFileName {
  const result = classify(name);
  if (typeof result === 'string') throw nameError(name, result);
  return result;
}

/** Like classifyWalFileName, but returns undefined for a name that is not a WAL file (e.g. when listing). */
export function tryClassifyWalFileName(name: string): ClassifiedWalFileName | undefined {
  const result = classify(name);
  return typeof result === 'string' ? undefined : result;
}

/** The classified name, or the reason it is not a WAL file name. */
function classify(name: string): ClassifiedWalFileName | string {
  if (name.length === 0) return 'the name is empty';
  if (/[/\\]/.test(name)) return 'a path, not a file name (pass %f, not %p)';
  const dot = name.indexOf('.');
  const stem = dot < 0 ? name : name.slice(0, dot);
  const suffix = dot < 0 ? '' : name.slice(dot);

  if (suffix === '.history') {
    const problem = hexProblem(stem, 8, 'a history file name');
    if (problem !== undefined) return `${problem} before '.history'`;
    const tli = Number.parseInt(stem, 16);
    return tli === 0 ? NO_TIMELINE_ZERO : { kind: 'history', name, timeline: tli as Timeline };
  }

  const problem = hexProblem(stem, SEGMENT_NAME_LENGTH, 'a segment name');
  if (problem !== undefined) return problem;
  const tli = Number.parseInt(stem.slice(0, 8), 16);
  if (tli === 0) return NO_TIMELINE_ZERO;
  const fields: SegmentFields = {
    name,
    timeline: tli as Timeline,
    logId: Number.parseInt(stem.slice(8, 16), 16),
    segLow: Number.parseInt(stem.slice(16, 24), 16),
  };

  if (suffix === '') return { kind: 'segment', ...fields };
  if (suffix === '.partial') return { kind: 'partial', ...fields };
  if (!BACKUP_SUFFIX.test(suffix)) {
    return `unknown suffix '${suffix}' (expected none, '.partial', '.history' or '.<8 hex digits>.backup')`;
  }
  const offsetText = suffix.slice(1, -'.backup'.length);
  return (
    hexProblem(offsetText, 8, 'the backup start offset') ?? {
      kind: 'backup',
      ...fields,
      offset: Number.parseInt(offsetText, 16),
    }
  );
}

const NO_TIMELINE_ZERO = 'timeline 0 does not exist (timelines start at 1)';

/**
 * The segment a segment, partial or backup-label name lies in, at this segment size (a name whose
 * last field is out of range for it throws). A backup label's offset is not checked here.
 */
export function segmentOfWalFileName(classified: Exclude<ClassifiedWalFileName, { kind: 'history' }>, segSize: number): SegmentName {
  const perId = segmentsPerXLogId(segSize);
  if (classified.segLow >= perId) {
    throw nameError(
      classified.name,
      `the last 8 digits ${hex8(classified.segLow)} exceed ${hex8(perId - 1)}, the highest allowed with ${formatSegSize(segSize)} segments`,
    );
  }
  return SegmentName.of(classified.timeline, BigInt(classified.logId) * BigInt(perId) + BigInt(classified.segLow), segSize);
}

/** Classifies a name and resolves its segment for `segSize`, rejecting fields out of range for that size. */
export function parseWalFileName(name: string, segSize: number): ParsedWalFileName {
  const classified = classifyWalFileName(name);
  if (classified.kind === 'history') return classified;
  const segment = segmentOfWalFileName(classified, segSize);
  if (classified.kind === 'backup') {
    if (classified.offset >= segSize) {
      throw nameError(
        name,
        `the backup start offset ${hex8(classified.offset)} lies beyond the end of a ${formatSegSize(segSize)} segment`,
      );
    }
    const backupStart = addLsn(segment.startLsn, classified.offset);
    return { kind: 'backup', name, timeline: classified.timeline, segment, offset: classified.offset, backupStart };
  }
  return { kind: classified.kind, name, timeline: classified.timeline, segment };
}
