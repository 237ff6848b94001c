/**
 * The catalog of one backup: every directory, file and symbolic link the server sent, with its
 * mode, mtime, size, SHA-256 and where its bytes are. Stored as one walvault object whose original
 * bytes are JSON lines: a header line, then one entry per line, in the order the server sent them
 * (backup_label first, global/pg_control last), so a reader never needs more than one line at once.
 *
 * A file's bytes are `extents`: [pack, offset, length] triples into the plaintext of the backup's
 * packs, consecutive and summing to `size`. Small files share a pack (bundling); a large file spans
 * several packs (chunking). A zero-length file has no extents.
 */
import { IntegrityError } from '../common/errors.js';
import { packKey } from './layout.js';
import type { StoredRef } from './record.js';

export const CATALOG_FORMAT_VERSION = 1;

export type EntryType = 'file' | 'dir' | 'link';

/** [pack number, offset in the pack's original bytes, length] */
export type Extent = readonly [pack: number, offset: number, length: number];

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
}

/** SHA-256 and size of one pack's original bytes; pack N is `packs[N - 1]`. */
export interface PackInfo {
  readonly sha256: string;
  readonly size: number;
}

export interface CatalogHeader {
  readonly catalog: typeof CATALOG_FORMAT_VERSION;
  readonly backup: string;
  readonly entries: number;
  readonly packs: readonly PackInfo[];
}

export interface Catalog {
  readonly packs: readonly PackInfo[];
  readonly entries: readonly CatalogEntry[];
}

export function encodeCatalog(backup: string, catalog: Catalog): Buffer {
  const { entries, packs } = catalog;
  const header: CatalogHeader = { catalog: CATALOG_FORMAT_VERSION, backup, entries: entries.length, packs };
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
  if (header.catalog !== CATALOG_FORMAT_VERSION) fail(`unsupported catalog format ${String(header.catalog)}`);
  if (header.backup !== expectedBackup) fail(`it belongs to backup '${String(header.backup)}'`);
  if (header.entries !== lines.length - 1) fail(`header says ${header.entries} entries, found ${lines.length - 1}`);
  if (!Array.isArray(header.packs)) fail('header has no pack list');
  for (const p of header.packs) if (!p || !SHA_RE.test(String(p.sha256)) || !nat(p.size)) fail('bad pack in the header');
  const entries: CatalogEntry[] = [];
  for (let i = 1; i < lines.length; i++) {
    let e: CatalogEntry;
    try {
      e = JSON.parse(lines[i]!) as CatalogEntry;
    } catch {
      return fail(`entry ${i} is not valid JSON`);
    }
    checkEntry(e, header.packs, (reason) => fail(`entry ${i} (${JSON.stringify(String(e?.path))}): ${reason}`));
    entries.push(e);
  }
  return { packs: header.packs, entries };
}

const nat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkEntry(e: CatalogEntry, packs: readonly PackInfo[], fail: (reason: string) => never): void {
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
      if (!Array.isArray(x) || x.length !== 3 || !nat(x[0]) || x[0] < 1 || !nat(x[1]) || !nat(x[2]) || x[2] === 0) fail('bad extent');
      const pack = packs[x[0] - 1];
      if (!pack || x[1] + x[2] > pack.size) fail(`extent [${x.join(', ')}] lies outside the packs`);
      sum += x[2];
    }
    if (sum !== e.size) fail(`extents hold ${sum} bytes, size is ${e.size}`);
  } else {
    if (e.size !== 0 || e.sha256 !== null || e.extents.length !== 0) fail(`a ${e.type} has no content`);
    if (e.type === 'link' ? typeof e.target !== 'string' || e.target === '' : e.target !== null) fail('bad link target');
  }
}

/** The reference loadBackupObject needs to read and verify pack `pack` of `backup`. */
export function packRef(backup: string, catalog: Catalog, pack: number): StoredRef {
  const info = catalog.packs[pack - 1];
  if (!info) throw new IntegrityError(`unable to read pack ${pack} of backup '${backup}': the catalog lists ${catalog.packs.length} packs`);
  return { key: packKey(backup, pack), sha256: info.sha256, size: info.size };
}

/** Where an entry goes in a restored cluster, relative to the data directory (tablespaces via pg_tblspc). */
export function restoredPath(e: Pick<CatalogEntry, 'tablespace' | 'path'>): string {
  return e.tablespace === null ? e.path : `pg_tblspc/${e.tablespace}/${e.path}`;
}
