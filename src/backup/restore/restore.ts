/**
 * `walvault restore`: a complete backup into a data directory, set up for archive recovery. An
 * incremental backup is rebuilt from its chain in the same pass (chain.ts, chain-plan.ts): the
 * directory written is a full one, with nothing of the chain staged on local disk.
 *
 * Order, so that an interrupted or failed restore is never startable:
 *  1. before anything is written: refusals (running server, non-empty directory without --delta),
 *     and what the backup is besides its packs read and checked (select.ts: its record and its
 *     chain's, every backup_manifest of the chain; chain.ts: the catalogs);
 *  2. the marker `walvault-restore.incomplete` (the reason is added when the restore fails), and
 *     with --delta the old global/pg_control removed;
 *  3. directories, tablespace links, files (every file's SHA-256 checked, see writer.ts) with
 *     global/pg_control written under a temporary name;
 *  4. tablespace_map, the archive settings, postgresql.auto.conf, recovery.signal;
 *  5. directory modes and mtimes, then global/pg_control renamed into place and the marker removed.
 * PostgreSQL refuses to start without global/pg_control ("could not open file global/pg_control"),
 * so until step 5 no `pg_ctl start` can run on a partial restore, with or without the marker.
 */
import { chmod, lchown, mkdir, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { ArchiveContext } from '../../archive/context.js';
import { fsyncDirectory, writeFileAtomic } from '../../common/atomic-file.js';
import { LocalIoError, UsageError, WalvaultError, describeCause } from '../../common/errors.js';
import { restoredPath, type Catalog, type CatalogEntry } from '../catalog.js';
import type { BackupRecord } from '../record.js';
import { loadChain, type LoadedChain } from './chain.js';
import { headerRequests, parseHeaders, planFiles } from './chain-plan.js';
import { readRanges } from './ranges.js';
import { scanForDelta } from './delta.js';
import type { RecoveryTarget, TargetAction, TargetTimeline } from './plan.js';
import { checkChainManifests, selectBackup } from './select.js';
import {
  RESTORE_CONFIG_FILE,
  readAutoConf,
  recoverySettings,
  restoreCommandFor,
  restoreConfigText,
  rewriteAutoConf,
  walFetchLauncher,
} from './recovery.js';
import { isTablespaceLink, planTablespaces, tablespaceMapText, type TablespacePlan } from './tablespaces.js';
import { INCOMPLETE_MARKER, refuseNonEmpty, refuseRunning, restoreOwner, type Owner } from './target-dir.js';
import { applyMeta, writeFiles, type FileTask } from './writer.js';

export interface RestoreOptions {
  readonly pgdata: string;
  /** A backup name, `latest` or undefined (the newest that reaches the target). */
  readonly backup?: string | undefined;
  readonly target: RecoveryTarget;
  readonly action?: TargetAction | undefined;
  readonly timeline?: TargetTimeline | undefined;
  readonly tablespaceMap: ReadonlyMap<number, string>;
  readonly delta: boolean;
  readonly parallel: number;
  readonly bufferBytes: number;
  /** Effective archive settings (name -> value) restore_command needs; persisted in walvault-restore.conf. */
  readonly archiveSettings: Readonly<Record<string, string>>;
  /** WALVAULT_STATE_DIR to pass on to restore_command, when the caller set one. */
  readonly stateDir?: string | undefined;
  /** Absolute path of node for restore_command (default: the one running this). */
  readonly node?: string;
}

export interface RestoreResult {
  readonly record: BackupRecord;
  readonly pgdata: string;
  readonly files: number;
  readonly bytes: number;
  readonly packs: number;
  readonly kept: number;
  readonly keptBytes: number;
  readonly removed: number;
  readonly tablespaces: readonly TablespacePlan[];
  readonly restoreCommand: string;
  readonly configFile: string;
  readonly settings: readonly [string, string][];
  readonly durationMs: number;
}

const PG_CONTROL = 'global/pg_control';
const PG_CONTROL_TEMP = 'global/pg_control.walvault-restore';
const SIGNALS = ['recovery.signal', 'standby.signal'];

function depth(path: string): number {
  return path.split('/').length;
}

/** Root mode: 0750 when the cluster was backed up with group access (initdb -g), else 0700. */
function rootMode(entries: readonly CatalogEntry[]): number {
  const global = entries.find((e) => e.type === 'dir' && e.tablespace === null && e.path === 'global');
  return global && (global.mode & 0o050) === 0o050 ? 0o750 : 0o700;
}

/**
 * mkdir -p where every directory it creates gets the restore's owner: a tablespace location or data
 * directory under a new path must be reachable by the postgres user, not only its last component.
 */
async function mkdirOwned(dir: string, owner: Owner | undefined): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (!owner || first === undefined) return;
  for (let d = dir; d.length >= first.length; d = dirname(d)) {
    await lchown(d, owner.uid, owner.gid);
    if (d === first) break;
  }
}

async function writeOwned(abs: string, text: string, mode: number, owner: Owner | undefined): Promise<void> {
  await writeFileAtomic(abs, Buffer.from(text, 'utf8'), mode);
  await chmod(abs, mode);
  if (owner) await lchown(abs, owner.uid, owner.gid);
}

export async function runRestore(ctx: ArchiveContext, opts: RestoreOptions): Promise<RestoreResult> {
  const t0 = Date.now();
  const pgdata = resolve(opts.pgdata);
  refuseRunning(pgdata);
  const { record, complete, damaged } = await selectBackup(ctx, opts);
  // Everything the backup consists of besides its packs is read and checked before a byte is written.
  const chain = await loadChain(ctx, record, complete, damaged);
  await checkChainManifests(ctx, record.name, chain.records);
  const catalog = chain.catalogs.get(record.name)!;
  const tablespaces = planTablespaces(record, catalog.entries, opts.tablespaceMap);
  if (!opts.delta) {
    const hint = '; restore into an empty directory, or use --delta to reuse it';
    refuseNonEmpty(pgdata, 'data directory', hint);
    for (const t of tablespaces) refuseNonEmpty(t.location, `tablespace ${t.oid} location`, hint);
  }
  const owner = restoreOwner(pgdata);
  await mkdirOwned(pgdata, owner);
  const marker = join(pgdata, INCOMPLETE_MARKER);
  const markerText = (why: string): string =>
    `walvault restore of backup '${record.name}' into this directory ${why}.\n` +
    `This directory is not a usable cluster: restore again (walvault restore --delta reuses what is here).\n`;
  await writeOwned(marker, markerText(`started at ${new Date().toISOString()} (pid ${process.pid}) and has not finished`), 0o600, owner);
  try {
    return await restoreInto(ctx, opts, { record, chain, catalog, tablespaces, pgdata, owner, t0 });
  } catch (err) {
    const reason = describeCause(err);
    await writeFileAtomic(marker, Buffer.from(markerText(`failed at ${new Date().toISOString()}: ${reason}`), 'utf8')).catch(
      () => undefined,
    );
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC' && !(err instanceof WalvaultError)) {
      throw new LocalIoError(`unable to restore backup '${record.name}' into '${pgdata}': no space left on device (disk full)`, {
        cause: err,
      });
    }
    if (err instanceof WalvaultError) throw err;
    throw new LocalIoError(`unable to restore backup '${record.name}' into '${pgdata}': ${reason}`, { cause: err });
  }
}

interface Prepared {
  readonly record: BackupRecord;
  readonly chain: LoadedChain;
  readonly catalog: Catalog;
  readonly tablespaces: readonly TablespacePlan[];
  readonly pgdata: string;
  readonly owner: Owner | undefined;
  readonly t0: number;
}

async function restoreInto(ctx: ArchiveContext, opts: RestoreOptions, p: Prepared): Promise<RestoreResult> {
  const { record, chain, catalog, tablespaces, pgdata, owner } = p;
  // Which blocks each INCREMENTAL file carries is in its header: read those first (small ranges).
  const requests = headerRequests(chain);
  const planned = planFiles(chain, parseHeaders(requests, await readRanges(ctx, record.name, chain.catalogs, requests, opts.parallel)));
  // What the restored directory holds: the catalog's directories and links, the planned files
  // (an INCREMENTAL.<name> entry of the catalog becomes <name>).
  const entries = [...catalog.entries.filter((e) => e.type !== 'file'), ...planned.map((f) => f.entry)];
  await chmod(pgdata, rootMode(entries));
  if (owner) await lchown(pgdata, owner.uid, owner.gid);
  let scan = { keep: new Set<string>(), removed: 0, keptBytes: 0 };
  if (opts.delta) {
    // First of all: the old cluster must not be startable while it is being replaced.
    await rm(join(pgdata, PG_CONTROL), { force: true });
    for (const s of SIGNALS) await rm(join(pgdata, s), { force: true });
    await fsyncDirectory(pgdata);
    scan = await scanForDelta(pgdata, entries, tablespaces, new Set([INCOMPLETE_MARKER]), opts.parallel);
  }
  const abs = (e: CatalogEntry): string => join(pgdata, restoredPath(e));

  const dirs = entries.filter((e) => e.type === 'dir');
  const mainDirs = dirs.filter((e) => e.tablespace === null).sort((a, b) => depth(a.path) - depth(b.path));
  const tsDirs = dirs.filter((e) => e.tablespace !== null).sort((a, b) => depth(a.path) - depth(b.path));
  // Owned as they are made, not at the end: a restore that fails half-way still leaves a tree the
  // data directory's owner can inspect, delete or reuse with --delta.
  const makeDir = async (d: CatalogEntry): Promise<void> => {
    await mkdir(abs(d), { recursive: true, mode: 0o700 });
    if (owner) await lchown(abs(d), owner.uid, owner.gid);
  };
  for (const d of mainDirs) await makeDir(d);
  await mkdir(join(pgdata, 'pg_tblspc'), { recursive: true, mode: 0o700 });
  for (const t of tablespaces) {
    await mkdirOwned(t.location, owner);
    await chmod(t.location, 0o700);
    if (owner) await lchown(t.location, owner.uid, owner.gid);
    const link = join(pgdata, 'pg_tblspc', String(t.oid));
    await rm(link, { force: true });
    await symlink(t.location, link);
    if (owner) await lchown(link, owner.uid, owner.gid);
  }
  for (const e of entries) {
    if (e.type === 'link' && !isTablespaceLink(e)) {
      throw new UsageError(`unable to restore backup '${record.name}': link '${restoredPath(e)}' is outside pg_tblspc; not supported`);
    }
  }
  for (const d of tsDirs) await makeDir(d);
  // Parents of files the catalog lists without their directory (none from BASE_BACKUP; cheap to be sure).
  const madeDirs = new Set(dirs.map((d) => restoredPath(d)));
  const files = entries.filter((e) => e.type === 'file');
  for (const f of files) {
    const rel = restoredPath(f);
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    if (parent !== '' && !madeDirs.has(parent)) {
      await mkdir(join(pgdata, parent), { recursive: true, mode: 0o700 });
      if (owner) await lchown(join(pgdata, parent), owner.uid, owner.gid);
      madeDirs.add(parent);
    }
  }

  const tasks: FileTask[] = [];
  for (const f of planned) {
    if (f.rel === PG_CONTROL) tasks.push({ ...f, abs: join(pgdata, PG_CONTROL_TEMP) });
    else if (scan.keep.has(f.rel)) await applyMeta(abs(f.entry), f.entry, owner);
    else tasks.push({ ...f, abs: abs(f.entry) });
  }
  if (!tasks.some((t) => t.rel === PG_CONTROL)) {
    throw new UsageError(`unable to restore backup '${record.name}': its catalog has no ${PG_CONTROL}`);
  }
  ctx.log.info({ backup: record.name, chain: chain.names, files: tasks.length, kept: scan.keep.size }, 'restoring files');
  const written = await writeFiles(ctx, record.name, chain.catalogs, tasks, {
    parallel: opts.parallel,
    bufferBytes: opts.bufferBytes,
    owner,
  });

  const mapEntry = files.find((f) => f.tablespace === null && f.path === 'tablespace_map');
  if (mapEntry && tablespaces.some((t) => t.location !== t.original)) {
    await writeOwned(join(pgdata, 'tablespace_map'), tablespaceMapText(tablespaces), mapEntry.mode, owner);
  }

  // Recovery set-up: see recovery.ts for why the settings are persisted here.
  const configFile = join(pgdata, RESTORE_CONFIG_FILE);
  const stamp = `written by walvault restore of backup '${record.name}' at ${new Date().toISOString()}`;
  await writeOwned(configFile, restoreConfigText(opts.archiveSettings, stamp), 0o600, owner);
  const restoreCommand = restoreCommandFor({
    configFile,
    launcher: walFetchLauncher(),
    node: opts.node ?? process.execPath,
    stateDir: opts.stateDir,
  });
  const settings = recoverySettings({ target: opts.target, action: opts.action, timeline: opts.timeline, restoreCommand });
  const autoConf = join(pgdata, 'postgresql.auto.conf');
  const autoEntry = files.find((f) => f.tablespace === null && f.path === 'postgresql.auto.conf');
  await writeOwned(autoConf, rewriteAutoConf(await readAutoConf(pgdata), settings, stamp), autoEntry?.mode ?? 0o600, owner);
  await writeOwned(join(pgdata, 'recovery.signal'), '', 0o600, owner);

  for (const d of [...mainDirs, ...tsDirs].reverse()) await applyMeta(abs(d), d, owner);
  await chmod(pgdata, rootMode(entries));
  for (const d of new Set([...dirs.map(abs), pgdata, ...tablespaces.map((t) => t.location)])) await fsyncDirectory(d);

  // The step that makes the directory startable, last (see the file comment).
  await rename(join(pgdata, PG_CONTROL_TEMP), join(pgdata, PG_CONTROL));
  await fsyncDirectory(join(pgdata, 'global'));
  const globalDir = mainDirs.find((d) => d.path === 'global');
  if (globalDir) await applyMeta(abs(globalDir), globalDir, owner); // the rename touched its mtime
  await rm(join(pgdata, INCOMPLETE_MARKER), { force: true });
  await fsyncDirectory(pgdata);
  return {
    record,
    pgdata,
    files: files.length,
    bytes: written.bytes,
    packs: written.packs,
    kept: scan.keep.size,
    keptBytes: scan.keptBytes,
    removed: scan.removed,
    tablespaces,
    restoreCommand,
    configFile,
    settings,
    durationMs: Date.now() - p.t0,
  };
}
