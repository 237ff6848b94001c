/**
 * backup-push against real servers: a cluster archiving with wal-push into a walvault archive
 * (posix or S3), backup-push run through the bin/walvault launcher, and a reader that checks a
 * stored backup against PostgreSQL's own backup_manifest and the packs' bytes.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { decodeCatalog, packRef, restoredPath, type Catalog } from '../../../src/backup/catalog.js';
import { recordKey } from '../../../src/backup/layout.js';
import { loadBackupObject } from '../../../src/backup/objects.js';
import { decodeBackupRecord, type BackupRecord } from '../../../src/backup/record.js';
import { parseCompression } from '../../../src/codec/codec.js';
import { createLogger } from '../../../src/common/log.js';
import { createStorage } from '../../../src/storage/factory.js';
import { PgCluster } from '../../support/cluster.js';
import { running } from '../../support/faults.js';
import type { S3TestServer } from '../../support/s3bucket.js';
import { pgOwnedDir, runCli, walCommands, writeConfig, type CliResult } from '../../support/walvault.js';

export interface ArchiveSetup {
  readonly url: string;
  readonly configFile: string;
  readonly env: Record<string, string>;
  readonly archiveCommand: string;
  readonly s3?: S3TestServer;
}

export function archiveSetup(root: string, s3?: S3TestServer): ArchiveSetup {
  const url = s3 ? `s3://${s3.bucket}/db` : `file://${pgOwnedDir(join(root, 'archive'))}`;
  const settings: Record<string, string | number | boolean> = { archive: url, compression: 'zstd:1' };
  let env: Record<string, string> = {};
  if (s3) {
    Object.assign(settings, {
      's3-endpoint': s3.endpoint,
      's3-force-path-style': true,
      's3-checksums': 'when_required',
      's3-max-attempts': 2,
    });
    env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
  }
  const configFile = writeConfig(join(root, 'walvault.conf'), settings);
  const { archiveCommand } = walCommands({ configFile, stateDir: pgOwnedDir(join(root, 'state')), extraEnv: env });
  return { url, configFile, env, archiveCommand, ...(s3 ? { s3 } : {}) };
}

export async function archivingCluster(major: number, a: ArchiveSetup, initdbArgs: string[] = []): Promise<PgCluster> {
  const c = await PgCluster.create({
    major,
    walSegSizeMb: 1,
    initdbArgs,
    config: { archive_mode: 'on', archive_command: a.archiveCommand, wal_keep_size: '256MB', max_wal_senders: '10' },
  });
  await c.start();
  return c;
}

export function backupPush(c: PgCluster, a: ArchiveSetup, args: string[] = [], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(
    'walvault',
    [
      'backup-push',
      '--config',
      a.configFile,
      '--pg-conninfo',
      c.conninfo(),
      '--backup-checkpoint',
      'fast',
      '--log-format',
      'json',
      ...args,
    ],
    { env: { ...a.env, ...env }, timeoutMs: 240_000 },
  );
}

export async function openArchiveCtx(a: ArchiveSetup): Promise<ArchiveContext> {
  const storage = await createStorage(
    a.url,
    a.s3
      ? {
          endpoint: a.s3.endpoint,
          forcePathStyle: true,
          checksums: 'when_required',
          region: 'us-east-1',
          credentials: { accessKeyId: a.s3.accessKeyId, secretAccessKey: a.s3.secretAccessKey },
          maxAttempts: 2,
        }
      : {},
  );
  return { storage, compression: parseCompression('zstd:1'), log: createLogger({ level: 'silent' }) };
}

/** Names of the backups under backups/ that have a backup.json, and of all that have anything. */
export async function backupNames(ctx: ArchiveContext): Promise<{ complete: string[]; any: string[] }> {
  const any = new Set<string>();
  const complete: string[] = [];
  for await (const o of ctx.storage.list('backups/')) {
    const [, name, leaf] = o.key.split('/');
    any.add(name!);
    if (leaf === 'backup.json') complete.push(name!);
  }
  return { complete, any: [...any] };
}

export async function readBackup(
  ctx: ArchiveContext,
  name: string,
): Promise<{ record: BackupRecord; catalog: Catalog; manifest: ManifestJson }> {
  const record = decodeBackupRecord(await ctx.storage.getBuffer(recordKey(name)), recordKey(name), name);
  const catalog = decodeCatalog(await loadBackupObject(ctx, record.catalog), record.catalog.key, name);
  expect(record.manifest).not.toBeNull();
  const manifest = JSON.parse((await loadBackupObject(ctx, record.manifest!)).toString('utf8')) as ManifestJson;
  return { record, catalog, manifest };
}

interface ManifestJson {
  Files: { Path?: string; 'Encoded-Path'?: string; Size: number; 'Checksum-Algorithm': string; Checksum: string }[];
  'WAL-Ranges': { Timeline: number; 'Start-LSN': string; 'End-LSN': string }[];
}

/**
 * Every file of PostgreSQL's manifest is in the catalog with its size and SHA-256, and every file
 * of the catalog reads back from the packs with the SHA-256 the catalog records.
 */
export async function checkBackupContent(ctx: ArchiveContext, name: string): Promise<{ files: number }> {
  const { record, catalog, manifest } = await readBackup(ctx, name);
  const byPath = new Map(catalog.entries.filter((e) => e.type === 'file').map((e) => [restoredPath(e), e]));
  for (const f of manifest.Files) {
    const path = f.Path ?? Buffer.from(f['Encoded-Path']!, 'hex').toString('utf8');
    const e = byPath.get(path);
    expect(e, `manifest file ${path} in the catalog`).toBeDefined();
    expect(f['Checksum-Algorithm']).toBe('SHA256');
    expect([path, e!.size, e!.sha256]).toEqual([path, f.Size, f.Checksum]);
  }
  expect(manifest['WAL-Ranges'][0]!['Start-LSN']).toBe(record.startLsn);
  // Read each pack once, then check every file's bytes from its extents.
  const hashes = new Map<string, ReturnType<typeof createHash>>();
  for (let pack = 1; pack <= catalog.packs.length; pack++) {
    const bytes = await loadBackupObject(ctx, packRef(name, catalog, pack));
    for (const e of catalog.entries) {
      for (const [p, off, len] of e.extents) {
        if (p !== pack) continue;
        const key = restoredPath(e);
        let h = hashes.get(key);
        if (!h) hashes.set(key, (h = createHash('sha256')));
        h.update(bytes.subarray(off, off + len));
      }
    }
  }
  for (const e of catalog.entries) {
    if (e.type !== 'file') continue;
    const digest = (hashes.get(restoredPath(e)) ?? createHash('sha256')).digest('hex');
    expect(digest, `bytes of ${restoredPath(e)}`).toBe(e.sha256);
  }
  return { files: byPath.size };
}

/**
 * Stops the look-ahead uploaders that earlier wal-push calls started under `root`/state: they
 * archive .ready segments on their own, so a test that makes archive_command fail must stop them
 * for WAL to really stay out of the archive.
 */
export async function stopLookAhead(root: string): Promise<void> {
  const pids: number[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name === 'ahead.pid') pids.push(Number(readFileSync(join(dir, e.name), 'utf8')));
    }
  };
  walk(join(root, 'state'));
  for (const pid of pids.filter((p) => Number.isInteger(p) && p > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      continue; // already gone
    }
    for (let i = 0; i < 100 && running(pid); i++) await new Promise((r) => setTimeout(r, 50));
  }
}
