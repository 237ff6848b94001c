/**
 * Which bytes make up a file of an incremental backup once it is rebuilt from its chain (pure; no
 * I/O, so restore can stream the blocks from the archive in the order the plan gives, and tests can
 * check every case by table). Facts from pg_combinebackup/reconstruct.c, with one deliberate
 * difference noted at `planReconstruction`.
 *
 * A chain is listed newest first: the incremental backup being restored, then its parent, ..., down
 * to the first backup that has the file whole. What the newest backup lists decides which files
 * exist: a file absent from it was deleted (dropped relation, truncated-away segment) and is not
 * restored, whatever older backups hold.
 */
import { IntegrityError } from '../../common/errors.js';
import { BLCKSZ, incrementalPathOf, parseIncrementalName, type IncrementalHeader } from './file-format.js';

/** One backup's copy of the file: whole, or an INCREMENTAL file (its parsed header). */
export type ChainFile =
  { readonly kind: 'full'; readonly size: number } | { readonly kind: 'incremental'; readonly header: IncrementalHeader };

/** Consecutive output blocks taken from one place. */
export interface BlockRun {
  /** First output block. */
  readonly targetBlock: number;
  readonly blocks: number;
  /** Index into the chain (0 = newest); null = zero-filled. */
  readonly source: number | null;
  /** Byte offset of the first block in that source file (0 for zeros). */
  readonly sourceOffset: number;
}

export interface ReconstructionPlan {
  /** Size of the rebuilt file in bytes. */
  readonly size: number;
  /**
   * Set when one chain member can be copied byte for byte (the newest is whole, or nothing changed
   * since an older whole copy of exactly this length); `runs` is then empty.
   */
  readonly copyFrom?: number;
  /** Covers [0, size) in order when `copyFrom` is unset. */
  readonly runs: readonly BlockRun[];
}

/**
 * Plans one file. Rules (reconstruct.c): the output has max(truncation length, highest block + 1)
 * blocks of the newest increment; blocks the newest increment carries come from it; every other
 * block comes from the newest older member that has it; a whole file ends the search; a block no
 * member supplies is zeros (an extension that wrote no WAL).
 *
 * Difference from pg_combinebackup: it limits older members only by the newest increment's
 * truncation length; here every increment's truncation length also limits what lies below it. A
 * relation cut to 5 blocks before increment 1 and grown back to 8 by an extension that wrote no
 * WAL before increment 2 gets zeros in blocks 5-7 (what the server's disk held), not the full
 * backup's pre-truncation pages. When every extension is WAL-logged (the server then sends those
 * blocks in the increment) both give the same result.
 */
export function planReconstruction(chain: readonly ChainFile[], name: string): ReconstructionPlan {
  const newest = chain[0];
  if (!newest) throw broken(name, 'the chain is empty');
  if (newest.kind === 'full') return { size: newest.size, copyFrom: 0, runs: [] };
  const latest = newest.header;
  let length = latest.truncationBlockLength;
  for (const b of latest.blockNumbers) length = Math.max(length, b + 1);
  const source = new Int32Array(length).fill(-1);
  const offset = new Float64Array(length);
  latest.blockNumbers.forEach((b, i) => {
    source[b] = 0;
    offset[b] = latest.headerLength + i * BLCKSZ;
  });
  let fromIncrements = latest.blockCount > 0;
  let limit = latest.truncationBlockLength;
  let copyFrom: number | undefined;
  let whole = false;
  for (let level = 1; level < chain.length && !whole; level++) {
    const member = chain[level] as ChainFile;
    if (member.kind === 'full') {
      const present = Math.floor(member.size / BLCKSZ);
      for (let b = 0; b < Math.min(limit, present); b++) {
        if (source[b] === -1) {
          source[b] = level;
          offset[b] = b * BLCKSZ;
        }
      }
      if (!fromIncrements && limit === latest.truncationBlockLength && limit === length && limit * BLCKSZ === member.size) {
        copyFrom = level;
      }
      whole = true;
      break;
    }
    const h = member.header;
    h.blockNumbers.forEach((b, i) => {
      if (b < limit && source[b] === -1) {
        source[b] = level;
        offset[b] = h.headerLength + i * BLCKSZ;
        fromIncrements = true;
      }
    });
    limit = Math.min(limit, h.truncationBlockLength);
  }
  if (!whole) throw broken(name, 'no backup of the chain holds the file whole');
  if (copyFrom !== undefined) return { size: length * BLCKSZ, copyFrom, runs: [] };
  return { size: length * BLCKSZ, runs: toRuns(source, offset) };
}

function toRuns(source: Int32Array, offset: Float64Array): BlockRun[] {
  const runs: BlockRun[] = [];
  for (let b = 0; b < source.length;) {
    const s = source[b] as number;
    const start = b;
    const first = offset[b] as number;
    b++;
    while (b < source.length && source[b] === s && (s === -1 || offset[b] === first + (b - start) * BLCKSZ)) b++;
    runs.push({ targetBlock: start, blocks: b - start, source: s === -1 ? null : s, sourceOffset: s === -1 ? 0 : first });
  }
  return runs;
}

/** The files of one backup, by path relative to its tablespace root. */
export interface BackupFileSet {
  has(path: string): boolean;
}

export interface ChainMember {
  /** Index into the backups given (0 = newest). */
  readonly backup: number;
  /** The member's own path: the target or its INCREMENTAL.* name. */
  readonly path: string;
  readonly kind: 'full' | 'incremental';
}

/**
 * Finds where `target` lives in each backup of a chain (newest first). Undefined when the newest
 * backup does not have it: the file was deleted and must not be restored. A backup in between that
 * has neither form breaks the chain (the server only sends a file incrementally when its parent's
 * manifest lists it), which is an integrity failure, never a silent hole.
 */
export function resolveChain(target: string, backups: readonly BackupFileSet[]): ChainMember[] | undefined {
  const incremental = incrementalPathOf(target);
  const members: ChainMember[] = [];
  for (let i = 0; i < backups.length; i++) {
    const files = backups[i] as BackupFileSet;
    const hasFull = files.has(target);
    const hasIncr = files.has(incremental);
    if (hasFull && hasIncr) throw broken(target, `backup ${i} of the chain holds it both whole and as ${incremental}`);
    if (!hasFull && !hasIncr) {
      if (i === 0) return undefined;
      throw broken(target, `backup ${i} of the chain holds neither it nor ${incremental}`);
    }
    members.push({ backup: i, path: hasFull ? target : incremental, kind: hasFull ? 'full' : 'incremental' });
    if (hasFull) return members;
  }
  throw broken(target, 'no backup of the chain holds the file whole');
}

/** The path a member of the newest backup is restored to ('base/5/INCREMENTAL.16384' -> 'base/5/16384'). */
export function restoredPathOf(path: string): string {
  return parseIncrementalName(path)?.target ?? path;
}

/**
 * An incremental backup's backup_label names its parent ("INCREMENTAL FROM LSN/TLI"); PostgreSQL
 * refuses to start from such a label ("this is an incremental backup, not a data directory"). The
 * rebuilt directory is a full one, so those lines go, as pg_combinebackup does.
 */
export function combinedBackupLabel(label: Buffer): Buffer {
  const lines = label.toString('utf8').split('\n');
  const kept = lines.filter((l) => !l.startsWith('INCREMENTAL FROM LSN: ') && !l.startsWith('INCREMENTAL FROM TLI: '));
  return Buffer.from(kept.join('\n'), 'utf8');
}

function broken(name: string, reason: string): IntegrityError {
  return new IntegrityError(`unable to rebuild file '${name}' from its backup chain: ${reason}`);
}
