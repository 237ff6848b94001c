/**
 * The catalog of one backup: every directory, file and symbolic link the server sent, with its
 * mode, mtime, size, SHA-256 and where its bytes are. Stored as one walvault object whose original
 * bytes are JSON lines: a header line, then one entry per line, in the order the server sent them
 * (backup_label first, global/pg_control last), so a reader never needs more than one line at once.
 *
 * A file's bytes are `extents`: [pack, offset, length] triples into the plaintext of the backup's
 * packs, consecutive and summing to `size`. Small files share a pack (bundling); a large file spans
 * several packs (chunking). A zero-length file has no extents.
 *
 * Format 2 (incremental backups, issue 13) adds, all optional for a reader of format 1:
 * - an extent `[pack, offset, length, owner]` reads pack `pack` of the earlier backup `owner`: bytes
 *   stored once and referenced by later backups (chunk reuse). The owner always holds the bytes in
 *   its own packs (references are resolved to the owner when written, never chained), and every
 *   owner is listed in the header's `depends`;
 * - `chunks` on a file: the SHA-256 of each consecutive CHUNK_BYTES piece of its content (the last
 *   one shorter), so the next backup can tell which pieces it already has without reading them;
 * - `incremental: true` on a file: the entry is a PostgreSQL 17 `INCREMENTAL.<name>` file exactly as
 *   the server sent it (size and SHA-256 are the INCREMENTAL file's); restore rebuilds `<name>`
 *   from the backup's parent chain (record.parent).
 *
 * Format 3 (backup-push's one SHA-256 pass) changes only the pack list: a pack written with
 * `"digest":"payload"` records the SHA-256 of its compressed payload (before encryption) instead
 * of its original bytes, as its object header does. The stored bytes are what the writer produced,
 * and they decompress deterministically, so this detects the same damage, at a hash over the
 * compressed size instead of over 8 MiB per pack; every file's own SHA-256 still covers the
 * original bytes end to end at restore and backup-verify.
 */
import { IntegrityError } from '../common/errors.js';
import { packKey } from './layout.js';
import type { StoredRef } from './record.js';

export const CATALOG_FORMAT_VERSION = 3;
/** Formats this walvault reads. */
const READABLE_FORMATS: readonly number[] = [1, 2, 3];

/** Size of the pieces whose SHA-256 a file entry lists in `chunks` (the unit of reuse). */
export const CHUNK_BYTES = 1024 * 1024;

export type EntryType = 'file' | 'dir' | 'link';

/**
 * [pack number, offset in the pack's original bytes, length], plus the owning backup's name when the
 * bytes are in an earlier backup's packs (format 2).
 */
export type Extent =
  readonly [pack: number, offset: number, length: number] | readonly [pack: number, offset: number, length: number, owner: string];

export interface CatalogEntry {
  readonly type: EntryType;
  /** null for the data directory, else the tablespace oid (its files live under `pg_tblspc/<oid>`). */
  readonly tablespace: number | null;
  /** Path relative to the data directory or tablespace directory, '/'-separated, as in the tar. */
  readonly path: string;
  /** Permission bits (e.g. 0o600, 0o700). */
  readonly mode: number;
  /** Modification time, seconds since the epoch. */
  readonly mtime: number;
  /** Bytes of a file; 0 for directories and links. */
  readonly size: number;
  /** SHA-256 (hex) of a file's content; null for directories and links. */
  readonly sha256: string | null;
  /** Target of a symbolic link; null otherwise. */
  readonly target: string | null;
  readonly extents: readonly Extent[];
  /** Format 2, files over CHUNK_BYTES: SHA-256 (hex) of each CHUNK_BYTES piece, in order. */
  readonly chunks?: readonly string[];
  /** Format 2: a PostgreSQL 17 INCREMENTAL file, rebuilt on restore from the parent chain. */
  readonly incremental?: true;
}

/**
 * Size of one pack's original bytes and the SHA-256 of those bytes, or (format 3, `digest:
 * 'payload'`) of its compressed payload; pack N is `packs[N - 1]`.
 */
export interface PackInfo {
  readonly sha256: string;
  readonly size: number;
  readonly digest?: 'payload';
}

export interface CatalogHeader {
  readonly catalog: number;
  readonly backup: string;
  readonly entries: number;
  readonly packs: readonly PackInfo[];
  /** Format 2: the earlier backups whose packs extents of this catalog read, sorted. */
  readonly depends?: readonly string[];
}

export interface Catalog {
  readonly packs: readonly PackInfo[];
  readonly entries: readonly CatalogEntry[];
  /** Backups whose packs this one's extents read (empty for a self-contained backup). */
  readonly depends?: readonly string[];
}

export function encodeCatalog(backup: string, catalog: Catalog): Buffer {
  const { entries, packs } = catalog;
  const depends = [...new Set(catalog.depends ?? [])].sort();
  const header: CatalogHeader = { catalog: CATALOG_FORMAT_VERSION, backup, entries: entries.length, packs, depends };
  const lines = [JSON.stringify(header)];
  for (const e of entries) lines.push(JSON.stringify(e));
  return Buffer.from(`${lines.join('\n')}\n`, 'utf8');
}

const SHA_RE = /^[0-9a-f]{64}$/;

/** Parses and checks a catalog: any malformed line, wrong count or inconsistent extents is damage. */
export function decodeCatalog(bytes: Buffer, key: string, expectedBackup: string): Catalog {
  const fail = (reason: string): never => {
    throw new IntegrityError(`unable to read backup catalog '${key}': ${reason}`);
  };
  const text = bytes.toString('utf8');
  if (!text.endsWith('\n')) fail('truncated (no final newline)');
  const lines = text.slice(0, -1).split('\n');
  let header: CatalogHeader;
  try {
    header = JSON.parse(lines[0] ?? '') as CatalogHeader;
  } catch {
    return fail('header line is not valid JSON');
  }
  if (!READABLE_FORMATS.includes(header.catalog)) fail(`unsupported catalog format ${String(header.catalog)}`);
  if (header.backup !== expectedBackup) fail(`it belongs to backup '${String(header.backup)}'`);
  if (header.entries !== lines.length - 1) fail(`header says ${header.entries} entries, found ${lines.length - 1}`);
  if (!Array.isArray(header.packs)) fail('header has no pack list');
  for (const p of header.packs) {
    if (!p || !SHA_RE.test(String(p.sha256)) || !nat(p.size)) fail('bad pack in the header');
    if (p.digest !== undefined && (p.digest !== 'payload' || header.catalog < 3)) fail('bad pack digest in the header');
  }
  const depends = header.depends ?? [];
  if (!Array.isArray(depends) || depends.some((d) => typeof d !== 'string' || d === '' || d === expectedBackup)) {
    fail('bad list of backups it depends on');
  }
  if (header.catalog === 1 && depends.length > 0) fail('format 1 cannot depend on other backups');
  const entries: CatalogEntry[] = [];
  for (let i = 1; i < lines.length; i++) {
    let e: CatalogEntry;
    try {
      e = JSON.parse(lines[i]!) as CatalogEntry;
    } catch {
      return fail(`entry ${i} is not valid JSON`);
    }
    checkEntry(e, header.packs, depends, (reason) => fail(`entry ${i} (${JSON.stringify(String(e?.path))}): ${reason}`));
    entries.push(e);
  }
  return { packs: header.packs, entries, depends };
}

const nat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkEntry(e: CatalogEntry, packs: readonly PackInfo[], depends: readonly string[], fail: (reason: string) => never): void {
  if (!e || typeof e !== 'object') fail('not an object');
  if (e.type !== 'file' && e.type !== 'dir' && e.type !== 'link') fail('bad type');
  if (e.tablespace !== null && !nat(e.tablespace)) fail('bad tablespace');
  if (typeof e.path !== 'string' || e.path === '' || e.path.startsWith('/') || e.path.split('/').includes('..')) {
    fail('bad path');
  }
  if (!nat(e.mode) || e.mode > 0o7777) fail('bad mode');
  if (!nat(e.mtime)) fail('bad mtime');
  if (!nat(e.size)) fail('bad size');
  if (!Array.isArray(e.extents)) fail('bad extents');
  if (e.type === 'file') {
    if (typeof e.sha256 !== 'string' || !SHA_RE.test(e.sha256)) fail('bad sha256');
    let sum = 0;
    for (const x of e.extents) {
      if (!Array.isArray(x) || (x.length !== 3 && x.length !== 4) || !nat(x[0]) || x[0] < 1 || !nat(x[1]) || !nat(x[2]) || x[2] === 0) {
        fail('bad extent');
      }
      const owner = x[3];
      if (owner !== undefined) {
        // Bounds are checked against the owner's catalog when the extent is resolved (extentRef).
        if (!depends.includes(owner)) fail(`extent [${x.join(', ')}] reads a backup the header does not list`);
      } else {
        const pack = packs[x[0] - 1];
        if (!pack || x[1] + x[2] > pack.size) fail(`extent [${x.join(', ')}] lies outside the packs`);
      }
      sum += x[2];
    }
    if (sum !== e.size) fail(`extents hold ${sum} bytes, size is ${e.size}`);
    if (e.chunks !== undefined) {
      if (
        !Array.isArray(e.chunks) ||
        e.chunks.length !== Math.ceil(e.size / CHUNK_BYTES) ||
        e.chunks.some((c) => !SHA_RE.test(String(c)))
      ) {
        fail('bad chunk checksums');
      }
    }
    if (e.incremental !== undefined && (e.incremental !== true || !isIncrementalPath(e.path))) fail('bad incremental flag');
  } else {
    if (e.size !== 0 || e.sha256 !== null || e.extents.length !== 0) fail(`a ${e.type} has no content`);
    if (e.type === 'link' ? typeof e.target !== 'string' || e.target === '' : e.target !== null) fail('bad link target');
    if (e.chunks !== undefined || e.incremental !== undefined) fail(`a ${e.type} has no content`);
  }
}

/** `INCREMENTAL.<name>` as the last path element: PostgreSQL 17's name for an incremental file. */
function isIncrementalPath(path: string): boolean {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.startsWith('INCREMENTAL.') && base.length > 'INCREMENTAL.'.length;
}

/** The backup whose packs hold an extent's bytes: its owner, or the catalog's own backup. */
export function extentOwner(backup: string, extent: Extent): string {
  return extent[3] ?? backup;
}

/**
 * The reference loadBackupObject needs for an extent's pack. `catalogs` gives the catalog of every
 * backup the extent may read (its own and those in `depends`); an extent that lies outside its
 * owner's pack is damage.
 */
export function extentRef(backup: string, extent: Extent, catalogs: ReadonlyMap<string, Catalog>): StoredRef {
  const owner = extentOwner(backup, extent);
  const catalog = catalogs.get(owner);
  if (!catalog) throw new IntegrityError(`unable to read backup '${backup}': it needs backup '${owner}', which is not available`);
  const ref = packRef(owner, catalog, extent[0]);
  if (extent[1] + extent[2] > ref.size) {
    throw new IntegrityError(
      `unable to read backup '${backup}': extent [${extent.join(', ')}] lies outside pack ${extent[0]} of '${owner}'`,
    );
  }
  return ref;
}

/** The reference loadBackupObject needs to read and verify pack `pack` of `backup`. */
export function packRef(backup: string, catalog: Catalog, pack: number): StoredRef {
  const info = catalog.packs[pack - 1];
  if (!info) throw new IntegrityError(`unable to read pack ${pack} of backup '${backup}': the catalog lists ${catalog.packs.length} packs`);
  return { key: packKey(backup, pack), sha256: info.sha256, size: info.size, ...(info.digest ? { digest: info.digest } : {}) };
}

/** Where an entry goes in a restored cluster, relative to the data directory (tablespaces via pg_tblspc). */
export function restoredPath(e: Pick<CatalogEntry, 'tablespace' | 'path'>): string {
  return e.tablespace === null ? e.path : `pg_tblspc/${e.tablespace}/${e.path}`;
}
