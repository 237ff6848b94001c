/**
 * PostgreSQL 17 incremental backups through readBaseBackup: a full backup and an incremental one
 * (UPLOAD_MANIFEST + BASE_BACKUP (INCREMENTAL)) into local directories, INCREMENTAL.* files parsed,
 * a plain data directory rebuilt from both with reconstruct.ts, then started with archive recovery
 * to 'immediate': every table's rows and content checksum equal the primary's. Refusals come back
 * as IncrementalUnavailableError with their reason.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, symlink, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster, useCluster, useClusterPool } from '../../support/cluster.js';
import { silentLogger } from '../../../src/common/log.js';
import { ReplicationConnection } from '../../../src/postgres/replication/connection.js';
import { readBaseBackup } from '../../../src/backup/source.js';
import type { BackupEntrySink, EntryHeader } from '../../../src/backup/entry-sink.js';
import {
  checkIncrementalSize,
  incrementalHeaderBytes,
  parseIncrementalHeader,
  type IncrementalHeader,
} from '../../../src/backup/incremental/file-format.js';
import {
  combinedBackupLabel,
  planReconstruction,
  resolveChain,
  restoredPathOf,
  type ChainFile,
} from '../../../src/backup/incremental/reconstruct.js';
import { IncrementalUnavailableError, isIncrementalUnavailable } from '../../../src/backup/incremental/errors.js';

const log = silentLogger();
const BLCKSZ = 8192;

/** Writes the data directory's entries under `dir` and keeps the manifest in memory. */
class DirSink implements BackupEntrySink {
  files = new Set<string>();
  manifestBytes = Buffer.alloc(0);
  private fh: FileHandle | undefined;
  constructor(readonly dir: string) {}
  async begin(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }
  async entry(h: EntryHeader): Promise<void> {
    if (h.tablespace !== null) throw new Error('this test uses no tablespaces');
    const p = join(this.dir, h.path);
    if (h.type === 'dir') await mkdir(p, { recursive: true });
    else if (h.type === 'link') await symlink(h.target ?? '', p);
    else {
      await mkdir(dirname(p), { recursive: true });
      this.fh = await open(p, 'w');
      this.files.add(h.path);
    }
  }
  async data(chunk: Buffer): Promise<void> {
    await this.fh!.write(chunk);
  }
  async entryEnd(): Promise<void> {
    await this.fh!.close();
    this.fh = undefined;
  }
  async manifest(chunk: Buffer): Promise<void> {
    this.manifestBytes = Buffer.concat([this.manifestBytes, chunk]);
  }
  progress(): void {}
  async end(): Promise<void> {}
}

async function takeBackup(c: PgCluster, dir: string, label: string, parentManifest?: Buffer): Promise<DirSink> {
  const conn = await ReplicationConnection.connect(c.conninfo(), log);
  try {
    const sink = new DirSink(dir);
    await readBaseBackup(conn, { label, checkpoint: 'fast', ...(parentManifest ? { incremental: { parentManifest } } : {}) }, sink, log);
    return sink;
  } finally {
    await conn.close();
  }
}

async function readHeader(path: string): Promise<IncrementalHeader> {
  const fh = await open(path, 'r');
  try {
    const first = Buffer.alloc(12);
    await fh.read(first, 0, 12, 0);
    const need = incrementalHeaderBytes(first, path);
    const buf = Buffer.alloc(need);
    await fh.read(buf, 0, need, 0);
    const header = parseIncrementalHeader(buf, path);
    checkIncrementalSize(header, (await fh.stat()).size, path);
    return header;
  } finally {
    await fh.close();
  }
}

/** Rebuilds a plain data directory from backups (newest first) the way restore will: file by file, block runs in order. */
async function rebuild(backups: DirSink[], out: string): Promise<{ rebuilt: number; copied: number }> {
  const newest = backups[0] as DirSink;
  let rebuilt = 0;
  let copied = 0;
  // Directories and links first (empty ones such as pg_wal/archive_status too).
  const walk = async (rel: string): Promise<void> => {
    for (const d of await readdir(join(newest.dir, rel), { withFileTypes: true })) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) {
        await mkdir(join(out, r), { recursive: true });
        await walk(r);
      }
    }
  };
  await mkdir(out, { recursive: true });
  await walk('');
  for (const path of newest.files) {
    if (path === 'backup_manifest') continue;
    const target = restoredPathOf(path);
    if (target === 'backup_label') {
      await writeFile(join(out, target), combinedBackupLabel(await readFile(join(newest.dir, path))));
      continue;
    }
    const members = resolveChain(
      target,
      backups.map((b) => b.files),
    );
    if (!members) throw new Error(`newest backup lists ${path} but the chain does not resolve it`);
    const chain: ChainFile[] = [];
    for (const m of members) {
      const p = join((backups[m.backup] as DirSink).dir, m.path);
      chain.push(
        m.kind === 'full' ? { kind: 'full', size: (await readFile(p)).length } : { kind: 'incremental', header: await readHeader(p) },
      );
    }
    const plan = planReconstruction(chain, target);
    const source = (i: number): string => join((backups[members[i]!.backup] as DirSink).dir, members[i]!.path);
    if (plan.copyFrom !== undefined) {
      await writeFile(join(out, target), await readFile(source(plan.copyFrom)));
      copied++;
      continue;
    }
    rebuilt++;
    const outFh = await open(join(out, target), 'w');
    try {
      for (const run of plan.runs) {
        const bytes = Buffer.alloc(run.blocks * BLCKSZ);
        if (run.source !== null) {
          const fh = await open(source(run.source), 'r');
          const { bytesRead } = await fh.read(bytes, 0, bytes.length, run.sourceOffset);
          await fh.close();
          if (bytesRead !== bytes.length) throw new Error(`short read from ${source(run.source)}`);
        }
        await outFh.write(bytes, 0, bytes.length, run.targetBlock * BLCKSZ);
      }
    } finally {
      await outFh.close();
    }
  }
  return { rebuilt, copied };
}

/** Row count and an md5 over every row, ordered, per table of every database given. */
async function fingerprint(c: PgCluster, tables: Record<string, string[]>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [db, names] of Object.entries(tables)) {
    const client = await c.connect({ database: db });
    try {
      for (const t of names) {
        const r = await client.query(
          `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) AS h FROM ${t} x`,
        );
        out[`${db}.${t}`] = `${r.rows[0].n}:${r.rows[0].h}`;
      }
    } finally {
      await client.end();
    }
  }
  return out;
}

async function waitForFile(p: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(p)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${p}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A manifest edited and re-checksummed (the server verifies the SHA-256 over everything before the checksum line). */
function editManifest(manifest: Buffer, edit: (text: string) => string): Buffer {
  const text = edit(manifest.toString('utf8'));
  const at = text.lastIndexOf('"Manifest-Checksum"');
  const body = text.slice(0, at);
  const sum = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${body}"Manifest-Checksum": "${sum}"}\n`);
}

describe('incremental backups (PostgreSQL 17)', () => {
  const h = useCluster({ major: 17, archive: true, config: { summarize_wal: 'on', wal_level: 'replica' } });
  const pool = useClusterPool();
  let work = '';
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('full + incremental rebuild into a directory that recovers to exactly the primary data', async () => {
    const c = h.cluster;
    work = await mkdtemp(join(tmpdir(), 'walvault-incr-'));
    await c.query('CREATE TABLE upd (id int PRIMARY KEY, v text)');
    await c.query("INSERT INTO upd SELECT g, repeat('u', 100) FROM generate_series(1, 20000) g");
    await c.query("CREATE TABLE trunc AS SELECT g AS id, repeat('t', 200) AS v FROM generate_series(1, 5000) g");
    await c.query('CREATE TABLE gone AS SELECT g AS id FROM generate_series(1, 3000) g');
    await c.query("CREATE TABLE grow AS SELECT g AS id, repeat('g', 50) AS v FROM generate_series(1, 100) g");
    await c.query('CHECKPOINT');
    const full = await takeBackup(c, join(work, 'full'), 'full');
    expect(full.manifestBytes.toString()).toMatch(/"PostgreSQL-Backup-Manifest-Version": 2/);

    // Updates spread over the table, a truncated, a dropped, a grown table and a new database.
    await c.query("UPDATE upd SET v = repeat('U', 100) WHERE id % 97 = 0");
    await c.query('TRUNCATE trunc');
    await c.query("INSERT INTO trunc SELECT g, 'again' FROM generate_series(1, 10) g");
    const goneFile = (await c.query<{ p: string }>("SELECT pg_relation_filepath('gone') AS p"))[0]!.p;
    await c.query('DROP TABLE gone');
    await c.query("INSERT INTO grow SELECT g, repeat('G', 50) FROM generate_series(101, 60000) g");
    await c.query('CREATE DATABASE newdb');
    const nc = await c.connect({ database: 'newdb' });
    await nc.query('CREATE TABLE fresh AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 2000) g');
    await nc.end();
    const upd = (await c.query<{ p: string }>("SELECT pg_relation_filepath('upd') AS p"))[0]!.p;

    const incr = await takeBackup(c, join(work, 'incr'), 'incr', full.manifestBytes);
    const want = await fingerprint(c, { postgres: ['upd', 'trunc', 'grow'], newdb: ['fresh'] });
    const label = await readFile(join(incr.dir, 'backup_label'), 'utf8');
    expect(label).toMatch(/^INCREMENTAL FROM LSN: /m);

    const increments = [...incr.files].filter((p) => /\/INCREMENTAL\./.test(p));
    expect(increments.length).toBeGreaterThan(10);
    expect(incr.files.has(upd)).toBe(false);
    const updHeader = await readHeader(join(incr.dir, upd.replace(/\/([^/]+)$/, '/INCREMENTAL.$1')));
    // About one row in 97 changed: some but not most of upd's blocks were sent.
    const updBlocks = (await readFile(join(full.dir, upd))).length / BLCKSZ;
    expect(updHeader.blockCount).toBeGreaterThan(0);
    expect(updHeader.blockCount).toBeLessThan(updBlocks);
    for (const p of increments) await readHeader(join(incr.dir, p)); // every one parses and has its size
    expect(incr.files.has(goneFile) || incr.files.has(goneFile.replace(/\/([^/]+)$/, '/INCREMENTAL.$1'))).toBe(false);

    await c.query("INSERT INTO upd VALUES (-1, 'after the backup')");
    const last = await c.switchWal();
    await waitForFile(join(c.archiveDir as string, last));

    const out = join(work, 'rebuilt');
    const counts = await rebuild([incr, full], out);
    expect(counts.rebuilt).toBeGreaterThan(0);
    expect(existsSync(join(out, goneFile))).toBe(false);
    const restored = pool.track(
      await PgCluster.fromBackup(out, {
        recovery: { restoreCommand: `cp ${c.archiveDir}/%f %p`, targetAction: 'promote' },
        config: { recovery_target: 'immediate', summarize_wal: 'off' },
      }),
    );
    await restored.start();
    await restored.waitForRecoveryEnd();
    expect(await fingerprint(restored, { postgres: ['upd', 'trunc', 'grow'], newdb: ['fresh'] })).toEqual(want);
    await restored.stop();
  });

  it('refuses a version 1 manifest and one of another cluster, by reason', async () => {
    const c = h.cluster;
    const full = await takeBackup(c, join(work, 'full2'), 'full2');
    const v1 = editManifest(full.manifestBytes, (t) =>
      t.replace(/"PostgreSQL-Backup-Manifest-Version": 2,\s*"System-Identifier": \d+,/, '"PostgreSQL-Backup-Manifest-Version": 1,'),
    );
    const err1 = await takeBackup(c, join(work, 'x1'), 'x1', v1).catch((e: unknown) => e);
    expect(isIncrementalUnavailable(err1)).toBe(true);
    expect((err1 as IncrementalUnavailableError).reason).toBe('parent-unsupported');
    expect((err1 as Error).message).toMatch(/^unable to take incremental backup 'x1': the parent backup is from PostgreSQL older than 17/);
    const other = editManifest(full.manifestBytes, (t) => t.replace(/"System-Identifier": \d+/, '"System-Identifier": 42'));
    const err2 = await takeBackup(c, join(work, 'x2'), 'x2', other).catch((e: unknown) => e);
    expect((err2 as IncrementalUnavailableError).reason).toBe('other-system');
    expect((err2 as IncrementalUnavailableError).exitCode).toBe(3);
  });

  it('refuses with summarize_wal off', async () => {
    const c = h.cluster;
    const full = await takeBackup(c, join(work, 'full3'), 'full3');
    await c.query('ALTER SYSTEM SET summarize_wal = off');
    await c.query('SELECT pg_reload_conf()');
    try {
      await new Promise((r) => setTimeout(r, 500));
      const err = await takeBackup(c, join(work, 'x3'), 'x3', full.manifestBytes).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IncrementalUnavailableError);
      expect((err as IncrementalUnavailableError).reason).toBe('summarize-wal-off');
      expect((err as Error).message).toMatch(/summarize_wal is off on the server/);
    } finally {
      await c.query('ALTER SYSTEM RESET summarize_wal');
      await c.query('SELECT pg_reload_conf()');
    }
  });

  it('refuses when the WAL summaries since the parent are gone', async () => {
    const c = h.cluster;
    const full = await takeBackup(c, join(work, 'full4'), 'full4');
    await c.query('CREATE TABLE later AS SELECT g FROM generate_series(1, 1000) g');
    await c.switchWal();
    await c.query('CHECKPOINT');
    // Let the summarizer write the summaries up to here first, so none appears after the removal.
    const [{ lsn }] = (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')) as [{ lsn: string }];
    for (let i = 0; i < 300; i++) {
      const [row] = await c.query<{ ok: boolean }>(`SELECT summarized_lsn >= '${lsn}'::pg_lsn AS ok FROM pg_get_wal_summarizer_state()`);
      if (row?.ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Removing the summaries is what wal_summary_keep_time does to a parent that is too old.
    const dir = join(c.dataDir, 'pg_wal', 'summaries');
    // temp.summary is the summarizer's file in progress: it may vanish under us.
    for (const f of await readdir(dir)) if (/^[0-9A-F]{40}\.summary$/.test(f)) await rm(join(dir, f), { force: true });
    const err = await takeBackup(c, join(work, 'x4'), 'x4', full.manifestBytes).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IncrementalUnavailableError);
    expect((err as IncrementalUnavailableError).reason).toBe('summaries-missing');
    expect((err as Error).message).toMatch(
      /the WAL summaries do not cover the time since the parent backup \((55000: )?WAL summaries are required on timeline 1/,
    );
  });
});
