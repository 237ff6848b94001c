/**
 * What a restore writes, file by file, for a backup and its chain of parents (pure once the
 * INCREMENTAL headers are read): every file of the newest backup as pieces of packs (pieces.ts) and
 * the check its bytes must pass. A plain file is its extents, whichever backup owns them. An
 * INCREMENTAL.<name> file becomes <name>, rebuilt by planReconstruction from the chain: each block
 * from the newest backup that holds it. A full backup is a chain of one and gives exactly the files
 * of its catalog.
 *
 * Two passes because an INCREMENTAL file says which blocks it carries only in its header:
 * `headerRequests` names the header bytes of every INCREMENTAL file the rebuild reads (sizes give
 * their length, see incrementalHeaderLengthForSize) and, for an incremental backup, its
 * backup_label; `planFiles` turns them into tasks.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../../common/errors.js';
import { restoredPath, type Catalog, type CatalogEntry } from '../catalog.js';
import {
  BLCKSZ,
  checkIncrementalSize,
  encodeIncrementalHeader,
  incrementalHeaderLengthForSize,
  parseIncrementalHeader,
  type IncrementalHeader,
} from '../incremental/file-format.js';
import {
  combinedBackupLabel,
  planReconstruction,
  resolveChain,
  restoredPathOf,
  type ChainFile,
  type ChainMember,
} from '../incremental/reconstruct.js';
import { filePieces, rangePieces, type Piece } from './pieces.js';
import type { RangeRequest } from './ranges.js';
import type { FileCheck } from './writer.js';

/** The backups of a chain, newest first, with their catalogs. */
export interface ChainCatalogs {
  readonly names: readonly string[];
  /** Every backup the chain's extents read, by name (the chain's members and their `depends`). */
  readonly catalogs: ReadonlyMap<string, Catalog>;
}

/** One file to restore: where it goes (`entry`: output path, size, mode, mtime), its pieces and check. */
export interface RestoreFile {
  readonly entry: CatalogEntry;
  readonly rel: string;
  readonly size: number;
  readonly pieces: readonly Piece[];
  readonly check: FileCheck;
}

type FileSet = ReadonlyMap<string, CatalogEntry>;

function fileSets(chain: ChainCatalogs): FileSet[] {
  return chain.names.map((name) => {
    const files = new Map<string, CatalogEntry>();
    for (const e of catalogOf(chain, name).entries) if (e.type === 'file') files.set(restoredPath(e), e);
    return files;
  });
}

function catalogOf(chain: ChainCatalogs, name: string): Catalog {
  const c = chain.catalogs.get(name);
  if (!c) throw new IntegrityError(`unable to restore backup '${chain.names[0]}': the catalog of backup '${name}' is not available`);
  return c;
}

const headerKey = (backup: string, rel: string): string => `${backup}\u0000${rel}`;
const isLabel = (e: CatalogEntry): boolean => e.tablespace === null && e.path === 'backup_label';
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface HeaderRequest extends RangeRequest {
  /** headerKey of the member, or 'label'. */
  readonly key: string;
}

export function headerRequests(chain: ChainCatalogs): HeaderRequest[] {
  const sets = fileSets(chain);
  const newest = chain.names[0]!;
  const out = new Map<string, HeaderRequest>();
  for (const e of catalogOf(chain, newest).entries) {
    if (e.type !== 'file') continue;
    if (isLabel(e) && chain.names.length > 1) {
      out.set('label', { key: 'label', backup: newest, file: 'backup_label', length: e.size, pieces: filePieces(newest, e) });
    }
    if (!e.incremental) continue;
    const target = restoredPathOf(restoredPath(e));
    for (const m of members(target, sets, newest)) {
      if (m.kind !== 'incremental') continue;
      const name = chain.names[m.backup]!;
      const entry = sets[m.backup]!.get(m.path)!;
      const key = headerKey(name, m.path);
      if (out.has(key)) continue;
      const length = guard(newest, target, name, () => incrementalHeaderLengthForSize(entry.size, m.path));
      out.set(key, { key, backup: name, file: m.path, length, pieces: rangePieces(name, entry, 0, length, 0) });
    }
  }
  return [...out.values()];
}

function members(target: string, sets: readonly FileSet[], newest: string): ChainMember[] {
  const found = guard(newest, target, newest, () => resolveChain(target, sets));
  if (!found) throw new IntegrityError(`unable to restore file '${target}' of backup '${newest}': the chain does not resolve it`);
  return found;
}

/** Runs `fn`, naming the restore's file and the backup the damage is in when it throws an IntegrityError. */
function guard<T>(newest: string, target: string, inBackup: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err;
    const where = inBackup === newest ? '' : ` (in backup '${inBackup}')`;
    throw new IntegrityError(`unable to restore file '${target}' of backup '${newest}'${where}: ${err.message}`, { cause: err });
  }
}

/** Parses the header bytes `headerRequests` asked for, by request key. */
export function parseHeaders(requests: readonly HeaderRequest[], bytes: readonly Buffer[]): Map<string, IncrementalHeader | Buffer> {
  const out = new Map<string, IncrementalHeader | Buffer>();
  requests.forEach((r, i) => {
    const b = bytes[i]!;
    out.set(r.key, r.key === 'label' ? b : guard(r.backup, r.file, r.backup, () => parseIncrementalHeader(b, r.file)));
  });
  return out;
}

export function planFiles(chain: ChainCatalogs, read: ReadonlyMap<string, IncrementalHeader | Buffer>): RestoreFile[] {
  const sets = fileSets(chain);
  const newest = chain.names[0]!;
  const out: RestoreFile[] = [];
  for (const e of catalogOf(chain, newest).entries) {
    if (e.type !== 'file') continue;
    if (isLabel(e) && chain.names.length > 1) {
      out.push(labelFile(newest, e, read.get('label') as Buffer));
      continue;
    }
    if (!e.incremental) {
      out.push({
        entry: e,
        rel: restoredPath(e),
        size: e.size,
        pieces: filePieces(newest, e),
        check: { kind: 'sha256', sha256: e.sha256! },
      });
      continue;
    }
    out.push(rebuiltFile(chain, sets, e, read));
  }
  return out;
}

function labelFile(newest: string, e: CatalogEntry, label: Buffer): RestoreFile {
  const got = sha256(label);
  if (got !== e.sha256) {
    throw new IntegrityError(
      `unable to restore file 'backup_label' of backup '${newest}': SHA-256 mismatch (read ${got}, catalog ${e.sha256})`,
    );
  }
  // The directory is a full one once rebuilt: PostgreSQL refuses a label that names a parent.
  const content = combinedBackupLabel(label);
  return {
    entry: { ...e, size: content.length, sha256: sha256(content) },
    rel: 'backup_label',
    size: content.length,
    pieces: [],
    check: { kind: 'literal', content },
  };
}

function rebuiltFile(
  chain: ChainCatalogs,
  sets: readonly FileSet[],
  e: CatalogEntry,
  read: ReadonlyMap<string, IncrementalHeader | Buffer>,
): RestoreFile {
  const newest = chain.names[0]!;
  const source = restoredPath(e);
  const target = restoredPathOf(source);
  const found = members(target, sets, newest);
  const chainFiles: ChainFile[] = found.map((m) => {
    const name = chain.names[m.backup]!;
    const entry = sets[m.backup]!.get(m.path)!;
    if (m.kind === 'full') return { kind: 'full', size: entry.size };
    const header = read.get(headerKey(name, m.path)) as IncrementalHeader | undefined;
    if (!header)
      throw new IntegrityError(
        `unable to restore file '${target}' of backup '${newest}': the header of '${m.path}' in backup '${name}' was not read`,
      );
    guard(newest, target, name, () => checkIncrementalSize(header, entry.size, m.path));
    return { kind: 'incremental', header };
  });
  const latest = (chainFiles[0] as { header: IncrementalHeader }).header;
  const plan = guard(newest, target, newest, () => planReconstruction(chainFiles, target));
  const slash = e.path.lastIndexOf('/');
  const entry: CatalogEntry = {
    ...e,
    path: `${e.path.slice(0, slash + 1)}${target.slice(target.lastIndexOf('/') + 1)}`,
    size: plan.size,
    sha256: null,
  };
  delete (entry as { incremental?: true }).incremental;
  const member = (level: number): { name: string; entry: CatalogEntry } => {
    const m = found[level]!;
    return { name: chain.names[m.backup]!, entry: sets[m.backup]!.get(m.path)! };
  };
  if (plan.copyFrom !== undefined) {
    // Nothing changed since an older whole copy: the newest INCREMENTAL file is a bare header, checked here.
    const got = sha256(encodeIncrementalHeader(latest));
    if (got !== e.sha256) {
      throw new IntegrityError(
        `unable to restore file '${target}' of backup '${newest}': SHA-256 mismatch of '${source}' (read ${got}, catalog ${e.sha256})`,
      );
    }
    const from = member(plan.copyFrom);
    return {
      entry: { ...entry, sha256: from.entry.sha256 },
      rel: target,
      size: plan.size,
      pieces: filePieces(from.name, from.entry),
      check: { kind: 'sha256', sha256: from.entry.sha256! },
    };
  }
  const pieces: Piece[] = [];
  for (const run of plan.runs) {
    if (run.source === null) continue;
    const from = member(run.source);
    pieces.push(
      ...guard(newest, target, from.name, () =>
        rangePieces(from.name, from.entry, run.sourceOffset, run.blocks * BLCKSZ, run.targetBlock * BLCKSZ),
      ),
    );
  }
  return { entry, rel: target, size: plan.size, pieces, check: { kind: 'incremental', sha256: e.sha256!, header: latest, source } };
}
