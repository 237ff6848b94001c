/**
 * backup-verify, the backup's own objects: every pack read and verified (loadBackupObject: codec,
 * decryption, size, SHA-256), every file's bytes hashed from its extents and held against the
 * catalog (an INCREMENTAL file's header parsed and held against its size), and the catalog held against PostgreSQL's backup_manifest. Packs are read in order, a
 * few ahead, so memory stays a few packs whatever the backup's size; a file spanning packs is
 * hashed across them.
 */
import { createHash, type Hash } from 'node:crypto';
import type { ArchiveContext } from '../archive/context.js';
import { count, errorText } from '../common/format.js';
import { packRef, restoredPath, type Catalog, type CatalogEntry } from '../backup/catalog.js';
import { loadBackupObject } from '../backup/objects.js';
import type { PgManifest } from '../backup/pg-manifest.js';
import type { BackupRecord } from '../backup/record.js';
import { formatLsn } from '../segment/lsn.js';
import { checkIncrementalHead, headLength, isFinding, isReferencing, type Findings } from './backup-verify-chain.js';

export { isFinding, type Findings };

const EMPTY_SHA = createHash('sha256').digest('hex');
const NAMED_FILES = 5;

function filesText(paths: readonly string[]): string {
  const named = paths.slice(0, NAMED_FILES).map((p) => `'${p}'`);
  return paths.length > NAMED_FILES ? `${named.join(', ')} and ${paths.length - NAMED_FILES} more` : named.join(', ');
}

export interface PackCheck {
  readonly packsRead: number;
  readonly bytesRead: number;
  readonly filesChecked: number;
}

/**
 * Reads every pack (`listed`: keys present in the listing) and checks every file's SHA-256.
 * `ahead` packs are downloaded while the current one is hashed.
 */
export async function checkPacks(
  ctx: ArchiveContext,
  record: BackupRecord,
  catalog: Catalog,
  listed: ReadonlySet<string>,
  out: Findings,
  ahead = 2,
): Promise<PackCheck> {
  const byPack = new Map<number, Array<{ entry: number; offset: number; length: number }>>();
  const remaining = new Map<number, number>();
  catalog.entries.forEach((e, i) => {
    // Files with bytes in earlier backups are hashed with the chain (backup-verify-chain.ts).
    if (e.type !== 'file' || isReferencing(e)) return;
    remaining.set(i, e.extents.length);
    for (const [pack, offset, length] of e.extents) {
      const list = byPack.get(pack) ?? [];
      list.push({ entry: i, offset, length });
      byPack.set(pack, list);
    }
  });
  const hashes = new Map<number, Hash>();
  // The first bytes of INCREMENTAL files, until they hold the header.
  const heads = new Map<number, { want: number; parts: Buffer[]; got: number }>();
  catalog.entries.forEach((e, i) => {
    if (e.type === 'file' && e.incremental && remaining.has(i)) heads.set(i, { want: headLength(e), parts: [], got: 0 });
  });
  let filesChecked = 0;
  const finish = (i: number, e: CatalogEntry, sha: string): void => {
    filesChecked++;
    if (sha !== e.sha256) out.problems.push(`file '${restoredPath(e)}': its bytes hash to ${sha}, the catalog says ${e.sha256}`);
    else if (e.incremental) checkIncrementalHead(e, Buffer.concat(heads.get(i)?.parts ?? []), out);
    heads.delete(i);
  };
  for (const [i, left] of remaining) {
    if (left === 0) finish(i, catalog.entries[i]!, EMPTY_SHA);
  }

  const total = catalog.packs.length;
  const load = (n: number): Promise<Buffer | Error> => {
    const ref = packRef(record.name, catalog, n);
    if (!listed.has(ref.key)) return Promise.resolve(new Error(`pack ${n} ('${ref.key}') is missing from the archive`));
    return loadBackupObject(ctx, ref).then(
      (b) => b,
      (err: unknown) => {
        if (isFinding(err)) return new Error(`pack ${n}: ${errorText(err)}`);
        throw err;
      },
    );
  };
  const pending = new Map<number, Promise<Buffer | Error>>();
  let packsRead = 0;
  let bytesRead = 0;
  for (let n = 1; n <= total; n++) {
    for (let k = n; k <= Math.min(total, n + ahead); k++) if (!pending.has(k)) pending.set(k, load(k));
    const got = await pending.get(n)!;
    pending.delete(n);
    const parts = byPack.get(n) ?? [];
    if (got instanceof Error) {
      const affected = [...new Set(parts.map((p) => p.entry))];
      const files = affected.map((i) => restoredPath(catalog.entries[i]!));
      out.problems.push(`${got.message}${files.length > 0 ? `; ${count(files.length, 'file')} lost: ${filesText(files)}` : ''}`);
      for (const i of affected) {
        hashes.delete(i);
        remaining.delete(i);
      }
      continue;
    }
    packsRead++;
    bytesRead += got.length;
    for (const p of parts) {
      if (!remaining.has(p.entry)) continue; // lost with an earlier pack
      let h = hashes.get(p.entry);
      if (!h) hashes.set(p.entry, (h = createHash('sha256')));
      const slice = got.subarray(p.offset, p.offset + p.length);
      h.update(slice);
      const head = heads.get(p.entry);
      if (head && head.got < head.want) {
        head.parts.push(slice.subarray(0, head.want - head.got));
        head.got += Math.min(slice.length, head.want - head.got);
      }
      const left = remaining.get(p.entry)! - 1;
      remaining.set(p.entry, left);
      if (left === 0) {
        finish(p.entry, catalog.entries[p.entry]!, h.digest('hex'));
        hashes.delete(p.entry);
      }
    }
  }
  // Objects under packs/ that the catalog does not name are not part of the backup.
  for (const key of listed) {
    const m = /\/packs\/(\d{9})$/.exec(key);
    if (m && Number(m[1]) > total) out.notes.push(`'${key}' is not part of the backup (the catalog lists ${total} packs)`);
  }
  return { packsRead, bytesRead, filesChecked };
}

/** The catalog against the completion record's counts. */
export function checkCatalogAgainstRecord(record: BackupRecord, catalog: Catalog, out: Findings): void {
  const files = catalog.entries.filter((e) => e.type === 'file');
  const raw = files.reduce((n, e) => n + e.size, 0);
  const pairs: Array<[string, number, number]> = [
    ['entries', catalog.entries.length, record.entries],
    ['files', files.length, record.files],
    ['packs', catalog.packs.length, record.packs],
    ['raw bytes', raw, record.rawBytes],
  ];
  for (const [what, got, want] of pairs) {
    if (got !== want) out.problems.push(`catalog: it holds ${got} ${what}, backup.json says ${want}`);
  }
}

/** Every file of PostgreSQL's manifest in the catalog with its size and checksum, and nothing more. */
export function checkManifest(manifest: PgManifest, record: BackupRecord, catalog: Catalog, out: Findings): number {
  const files = new Map<string, CatalogEntry>();
  for (const e of catalog.entries) if (e.type === 'file') files.set(restoredPath(e), e);
  const algorithms = new Set<string>();
  let matched = 0;
  for (const m of manifest.files) {
    const e = files.get(m.path);
    if (!e) {
      out.problems.push(`manifest: '${m.path}' (${m.size} bytes) is not in the backup's catalog`);
      continue;
    }
    files.delete(m.path);
    if (e.size !== m.size) {
      out.problems.push(`manifest: '${m.path}' has ${m.size} bytes in PostgreSQL's manifest, ${e.size} in the catalog`);
      continue;
    }
    if (m.algorithm === 'SHA256' && m.checksum !== e.sha256) {
      out.problems.push(`manifest: '${m.path}': PostgreSQL's SHA-256 is ${m.checksum}, the catalog's ${e.sha256}`);
      continue;
    }
    if (m.algorithm !== 'SHA256') algorithms.add(m.algorithm);
    matched++;
  }
  for (const path of files.keys()) out.problems.push(`catalog: '${path}' is not in PostgreSQL's manifest`);
  if (algorithms.size > 0) {
    out.notes.push(
      `the manifest's checksums are ${[...algorithms].join(', ')}, not SHA256: sizes checked against it, contents against walvault's own SHA-256`,
    );
  }
  if (manifest.systemId !== null && manifest.systemId !== record.systemId) {
    out.problems.push(`manifest: system identifier ${manifest.systemId}, backup.json says ${record.systemId}`);
  }
  const end = manifest.walRanges.find((r) => r.timeline === record.endTimeline);
  if (!end || formatLsn(end.endLsn) !== record.endLsn) {
    out.problems.push(`manifest: its WAL range on timeline ${record.endTimeline} does not end at ${record.endLsn} (backup.json's end LSN)`);
  }
  const start = manifest.walRanges.find((r) => r.timeline === record.startTimeline);
  if (!start || formatLsn(start.startLsn) !== record.startLsn) {
    out.problems.push(
      `manifest: its WAL range on timeline ${record.startTimeline} does not start at ${record.startLsn} (backup.json's start LSN)`,
    );
  }
  return matched;
}
