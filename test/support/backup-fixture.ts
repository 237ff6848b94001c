/**
 * Writes a complete backup in the storage format (docs/storage-format.md, "Base backups") from
 * entries given in memory, for unit tests of the readers (restore, list, verify, expire) that must
 * not depend on the writer under test. Integration tests use backup-push against a real server.
 *
 * Catalog format 2 (incremental chains): `parent` makes an incremental backup; a file with `ref`
 * is stored by reference to the same path's bytes in an earlier backup (the extents point into the
 * backup that owns them, never chained); `incremental: true` marks content built with
 * `incrementalFileBytes` (PostgreSQL 17's INCREMENTAL format, written here byte by byte from the
 * format's description, independently of src/backup/incremental).
 */
import { EMPTY_DIRS, SKIP_FILES } from '../../tools/pgcluster/datadir.js';
import { createHash } from 'node:crypto';
import type { ArchiveContext } from '../../src/archive/context.js';
import { decodeCatalog, encodeCatalog, type CatalogEntry, type Extent, type PackInfo } from '../../src/backup/catalog.js';
import { catalogKey, manifestKey, packKey, recordKey, startedKey } from '../../src/backup/layout.js';
import { loadBackupObject, storeBackupObject } from '../../src/backup/objects.js';
import { BACKUP_FORMAT_VERSION, encodeRecord, newStartedRecord, type BackupRecord } from '../../src/backup/record.js';

export interface FixtureFile {
  readonly path: string;
  readonly tablespace?: number | null;
  readonly content?: Buffer;
  readonly type?: 'file' | 'dir' | 'link';
  readonly target?: string;
  readonly mode?: number;
  readonly mtime?: number;
  /** Store no bytes: reference the same path's content in this earlier backup. */
  readonly ref?: string;
  /** `content` is a PostgreSQL 17 INCREMENTAL file (the path's last element starts with INCREMENTAL.). */
  readonly incremental?: true;
}

/**
 * An INCREMENTAL file: magic 0xd3ae1f0d, block count, truncation block length, the block numbers,
 * zero padding to 8192 when there are blocks, then the blocks (little-endian, as on x86-64).
 */
export function incrementalFileBytes(truncationBlockLength: number, blocks: ReadonlyArray<readonly [number, Buffer]>): Buffer {
  const head = Buffer.alloc(12 + 4 * blocks.length);
  head.writeUInt32LE(0xd3ae1f0d, 0);
  head.writeUInt32LE(blocks.length, 4);
  head.writeUInt32LE(truncationBlockLength, 8);
  blocks.forEach(([n], i) => head.writeUInt32LE(n, 12 + 4 * i));
  if (blocks.length === 0) return head;
  const padded = Buffer.alloc(Math.ceil(head.length / 8192) * 8192);
  head.copy(padded);
  return Buffer.concat([padded, ...blocks.map(([, b]) => b)]);
}

/** Reads back a fixture backup's catalog (to find what a `ref` points at). */
async function catalogOf(ctx: ArchiveContext, name: string): Promise<CatalogEntry[]> {
  const { decodeBackupRecord } = await import('../../src/backup/record.js');
  const record = decodeBackupRecord(await ctx.storage.getBuffer(recordKey(name)), recordKey(name), name);
  return [...decodeCatalog(await loadBackupObject(ctx, record.catalog), record.catalog.key, name).entries];
}

export interface FixtureOptions {
  readonly name: string;
  readonly files: readonly FixtureFile[];
  /** Pack size in original bytes: small values force files across packs. */
  readonly packSize?: number;
  readonly manifest?: Buffer | null;
  readonly record?: Partial<BackupRecord>;
  /** Write everything except backup.json (an unfinished backup). */
  readonly incomplete?: boolean;
  /** An incremental backup on top of this one. */
  readonly parent?: string;
}

export async function writeFixtureBackup(ctx: ArchiveContext, opts: FixtureOptions): Promise<BackupRecord> {
  const packSize = opts.packSize ?? 1 << 20;
  const systemId = opts.record?.systemId ?? '7000000000000000001';
  await ctx.storage.put(
    startedKey(opts.name),
    encodeRecord(
      newStartedRecord({
        name: opts.name,
        type: opts.parent ? 'incremental' : 'full',
        parent: opts.parent ?? null,
        label: 'fixture',
        startTime: new Date().toISOString(),
        writer: 'fixture',
      }),
    ),
  );
  const entries: CatalogEntry[] = [];
  let pack = 1;
  let current: Buffer[] = [];
  let currentLen = 0;
  let storedBytes = 0;
  let rawBytes = 0;
  const packs: PackInfo[] = [];
  const depends = new Set<string>();
  let reusedBytes = 0;
  const refCatalogs = new Map<string, CatalogEntry[]>();
  const flush = async (): Promise<void> => {
    if (currentLen === 0) return;
    const stored = await storeBackupObject(ctx, packKey(opts.name, pack), Buffer.concat(current), systemId);
    packs.push({ sha256: stored.ref.sha256, size: stored.ref.size });
    storedBytes += stored.storedBytes;
    pack++;
    current = [];
    currentLen = 0;
  };
  for (const f of opts.files) {
    if (f.ref) {
      if (!refCatalogs.has(f.ref)) refCatalogs.set(f.ref, await catalogOf(ctx, f.ref));
      const src = refCatalogs.get(f.ref)!.find((e) => e.type === 'file' && e.path === f.path && e.tablespace === (f.tablespace ?? null));
      if (!src) throw new Error(`fixture: backup ${f.ref} has no file ${f.path}`);
      const extents = src.extents.map((x): Extent => [x[0], x[1], x[2], x[3] ?? f.ref!]);
      for (const x of extents) depends.add(x[3]!);
      reusedBytes += src.size;
      rawBytes += src.size;
      entries.push({
        ...src,
        ...(f.mode !== undefined ? { mode: f.mode } : {}),
        ...(f.mtime !== undefined ? { mtime: f.mtime } : {}),
        extents,
      });
      continue;
    }
    const type = f.type ?? 'file';
    const content = type === 'file' ? (f.content ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const extents: Extent[] = [];
    let off = 0;
    while (off < content.length) {
      const take = Math.min(content.length - off, packSize - currentLen);
      extents.push([pack, currentLen, take]);
      current.push(content.subarray(off, off + take));
      currentLen += take;
      off += take;
      if (currentLen === packSize) await flush();
    }
    rawBytes += content.length;
    entries.push({
      type,
      tablespace: f.tablespace ?? null,
      path: f.path,
      mode: f.mode ?? (type === 'dir' ? 0o700 : type === 'link' ? 0o777 : 0o600),
      mtime: f.mtime ?? 1_760_000_000,
      size: content.length,
      sha256: type === 'file' ? createHash('sha256').update(content).digest('hex') : null,
      target: type === 'link' ? (f.target ?? '/nonexistent') : null,
      extents,
      ...(f.incremental ? { incremental: true as const } : {}),
    });
  }
  await flush();
  const catalog = await storeBackupObject(
    ctx,
    catalogKey(opts.name),
    encodeCatalog(opts.name, { entries, packs, depends: [...depends] }),
    systemId,
  );
  storedBytes += catalog.storedBytes;
  let manifest = null;
  if (opts.manifest) {
    const m = await storeBackupObject(ctx, manifestKey(opts.name), opts.manifest, systemId);
    storedBytes += m.storedBytes;
    manifest = m.ref;
  }
  const label = entries.find((e) => e.path === 'backup_label');
  const record: BackupRecord = {
    format: BACKUP_FORMAT_VERSION,
    name: opts.name,
    type: opts.parent ? 'incremental' : 'full',
    parent: opts.parent ?? null,
    label: 'fixture',
    systemId,
    pgVersionNum: 170000,
    walSegSize: 16 * 1024 * 1024,
    startLsn: '0/2000028',
    startTimeline: 1,
    endLsn: '0/2000138',
    endTimeline: 1,
    checkpointLsn: '0/2000060',
    startTime: '2026-12-01T10:00:00.000Z',
    stopTime: '2026-12-01T10:00:05.000Z',
    walFirst: '000000010000000000000002',
    walLast: '000000010000000000000002',
    tablespaces: [],
    entries: entries.length,
    files: entries.filter((e) => e.type === 'file').length,
    rawBytes,
    storedBytes,
    packs: pack - 1,
    ...(opts.parent ? { reusedBytes, depends: [...depends].sort() } : {}),
    catalog: catalog.ref,
    manifest,
    backupLabel: label ? (opts.files.find((f) => f.path === 'backup_label')?.content?.toString('utf8') ?? '') : '',
    compression: `${ctx.compression.name}:${ctx.compression.level}`,
    encryptionKeyId: ctx.encryption?.keyId ?? null,
    writer: 'fixture',
    host: 'fixture',
    ...opts.record,
  };
  if (!opts.incomplete) await ctx.storage.put(recordKey(opts.name), encodeRecord(record), { ifAbsent: true });
  return record;
}

export interface BackupFacts {
  readonly name: string;
  readonly startLsn: string;
  readonly endLsn: string;
  readonly walFirst: string;
  readonly walLast: string;
  /** When the backup ended (at or after pg_backup_stop returned). */
  readonly stopTime: Date;
  readonly startTime?: Date;
  readonly packSize?: number;
  readonly walSegSize?: number;
}

export interface DirectoryBackupOptions extends BackupFacts {
  /** A plain-format base backup: `pg_basebackup -Fp -X none` or the harness's `PgCluster.baseBackup()`. */
  readonly dir: string;
}

/** What a walk of a data directory found; global/pg_control apart because it goes last. */
export interface CollectedDirectory {
  readonly files: FixtureFile[];
  readonly control: FixtureFile;
  readonly tablespaces: { oid: number; location: string; bytes: number }[];
  readonly pgVersion: number;
}

/**
 * Walks a data directory as BASE_BACKUP without TABLESPACE_MAP sends it: every directory, file
 * (mode, mtime) and `pg_tblspc/<oid>` link, each tablespace's files (walked at the link's target)
 * under its oid. `live`: a running server's directory between pg_backup_start and pg_backup_stop,
 * so runtime files, WAL and temp files are left out and files that vanish are skipped.
 */
export async function collectDataDirectory(dir: string, live: boolean): Promise<CollectedDirectory> {
  const { lstat, readFile, readdir, readlink } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const files: FixtureFile[] = [];
  const tablespaces: { oid: number; location: string; bytes: number }[] = [];
  const gone = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';
  const walk = async (abs: string, rel: string, tablespace: number | null): Promise<void> => {
    for (const name of (await readdir(abs)).sort()) {
      const a = join(abs, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      if (tablespace === null && (r === 'backup_label' || r === 'global/pg_control')) continue;
      if (
        live &&
        ((tablespace === null && rel === '' && SKIP_FILES.has(name)) || name.startsWith('pgsql_tmp') || name === 'pg_internal.init')
      ) {
        continue;
      }
      const st = await lstat(a).catch((err: unknown) => (gone(err) ? undefined : Promise.reject(err)));
      if (!st) continue;
      const meta = { path: r, tablespace, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isSymbolicLink()) {
        const target = await readlink(a);
        files.push({ ...meta, type: 'link', target });
        const oid = tablespace === null && /^pg_tblspc\/(\d+)$/.exec(r)?.[1];
        if (oid) {
          const before = files.length;
          await walk(target, '', Number(oid));
          const bytes = files.slice(before).reduce((n, f) => n + (f.content?.length ?? 0), 0);
          tablespaces.push({ oid: Number(oid), location: target, bytes });
        }
      } else if (st.isDirectory()) {
        files.push({ ...meta, type: 'dir' });
        if (!(live && tablespace === null && EMPTY_DIRS.has(r))) await walk(a, r, tablespace);
        else if (r === 'pg_wal') files.push({ ...meta, path: 'pg_wal/archive_status', type: 'dir' });
      } else if (st.isFile()) {
        const content = await readFile(a).catch((err: unknown) => (gone(err) ? undefined : Promise.reject(err)));
        if (content) files.push({ ...meta, type: 'file', content });
      }
    }
  };
  await walk(dir, '', null);
  const st = await lstat(join(dir, 'global/pg_control'));
  const control: FixtureFile = {
    path: 'global/pg_control',
    mode: st.mode & 0o7777,
    mtime: Math.floor(st.mtimeMs / 1000),
    content: await readFile(join(dir, 'global/pg_control')),
  };
  const pgVersion = Number((await readFile(join(dir, 'PG_VERSION'), 'utf8')).trim());
  return { files, control, tablespaces, pgVersion };
}

/** Stores a collected directory with its backup_label (first) and tablespace_map, pg_control last. */
export async function writeCollectedBackup(
  ctx: ArchiveContext,
  collected: CollectedDirectory,
  facts: BackupFacts & { backupLabel: string; tablespaceMap?: string | null },
): Promise<BackupRecord> {
  const now = Math.floor(Date.now() / 1000);
  const head: FixtureFile[] = [{ path: 'backup_label', mode: 0o600, mtime: now, content: Buffer.from(facts.backupLabel) }];
  if (facts.tablespaceMap) head.push({ path: 'tablespace_map', mode: 0o600, mtime: now, content: Buffer.from(facts.tablespaceMap) });
  const startTimeline = Number(/START TIMELINE: (\d+)/.exec(facts.backupLabel)?.[1] ?? '1');
  const checkpoint = /CHECKPOINT LOCATION: ([0-9A-F]+\/[0-9A-F]+)/.exec(facts.backupLabel)?.[1] ?? null;
  return writeFixtureBackup(ctx, {
    name: facts.name,
    files: [...head, ...collected.files.filter((f) => f.path !== 'tablespace_map' || f.tablespace), collected.control],
    packSize: facts.packSize ?? 1 << 20,
    record: {
      label: 'fixture from a data directory',
      systemId: collected.control.content!.readBigUInt64LE(0).toString(),
      pgVersionNum: collected.pgVersion * 10000,
      walSegSize: facts.walSegSize ?? 16 * 1024 * 1024,
      startLsn: facts.startLsn,
      startTimeline,
      endLsn: facts.endLsn,
      endTimeline: startTimeline,
      checkpointLsn: checkpoint,
      startTime: (facts.startTime ?? facts.stopTime).toISOString(),
      stopTime: facts.stopTime.toISOString(),
      walFirst: facts.walFirst,
      walLast: facts.walLast,
      tablespaces: collected.tablespaces,
      backupLabel: facts.backupLabel,
    },
  });
}

/** A plain-format base backup directory (its backup_label and tablespace_map files included). */
export async function writeBackupFromDirectory(ctx: ArchiveContext, opts: DirectoryBackupOptions): Promise<BackupRecord> {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const collected = await collectDataDirectory(opts.dir, false);
  const backupLabel = await readFile(join(opts.dir, 'backup_label'), 'utf8');
  const tablespaceMap = await readFile(join(opts.dir, 'tablespace_map'), 'utf8').catch(() => null);
  return writeCollectedBackup(ctx, collected, { ...opts, backupLabel, tablespaceMap });
}

/** The error a call that must fail (a restore) threw; throws when it succeeded. */
export async function failure(p: Promise<unknown>): Promise<Error & { exitCode: number }> {
  const got = await p.then(
    () => undefined,
    (e: unknown) => e as Error & { exitCode: number },
  );
  if (!got) throw new Error('the call succeeded');
  return got;
}
