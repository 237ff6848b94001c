/**
 * expire, backup-list, backup-verify and wal-delete through the real launcher, on an archive whose
 * WAL a real PostgreSQL archived with archive_command = wal-push. The four backups are real in
 * their positions (PostgreSQL's own pg_backup_start/stop gave their start and stop LSNs and WAL
 * files) and written in the storage format by the test fixture (backup-push is tested on its own).
 * Their names run opposite to their WAL order, as after a clock reset: retention must go by stop
 * LSN (wal-g#636).
 *
 * With WALVAULT_TEST_EXAMPLES=<dir> the readable outputs are also written there (docs/operations.md).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { silentLogger } from '../../../src/common/log.js';
import { PosixStorage } from '../../../src/storage/posix.js';
import { listWal } from '../../../src/ops/list.js';
import type { BackupRecord } from '../../../src/backup/record.js';
import { PgCluster, defaultMajor, useClusterPool } from '../../support/cluster.js';
import { writeFixtureBackup } from '../../support/backup-fixture.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig, type CliResult } from '../../support/walvault.js';

const MB = 1024 * 1024;

function example(name: string, res: CliResult): void {
  const dir = process.env['WALVAULT_TEST_EXAMPLES'];
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.txt`), `${res.stdout}${res.stderr ? `--- stderr ---\n${res.stderr}` : ''}--- exit ${res.code} ---\n`);
}

describe('expire on a real archive (posix, four backups)', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-expire-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  const configFile = writeConfig(join(root, 'walvault.conf'), {
    archive: `file://${archiveDir}`,
    compression: 'zstd',
    'push-lookahead': 0,
    'fetch-prefetch': 0,
  });
  const { archiveCommand } = walCommands({ configFile, stateDir });
  const env = { WALVAULT_CONFIG: configFile };
  const vv = (...args: string[]): Promise<CliResult> => runCli('walvault', args, { env });
  const ctx = (): ArchiveContext => ({
    storage: new PosixStorage({ root: archiveDir }),
    compression: { name: 'zstd', level: 1 },
    log: silentLogger(),
  });
  // Newest first in name order, oldest first in WAL order.
  const names = ['20261201T040000F', '20261201T030000F', '20261201T020000F', '20261201T010000F'];
  const records: BackupRecord[] = [];
  let segmentsBefore: string[];

  beforeAll(async () => {
    const pg = pool.track(
      await PgCluster.create({ major: defaultMajor(), walSegSizeMb: 1, config: { archive_mode: 'on', archive_command: archiveCommand } }),
    );
    await pg.start();
    await pg.query('CREATE TABLE t (id int, pad text)');
    const systemId = await pg.systemIdentifier();
    for (const name of names) {
      await pg.generateWal({ bytes: 2 * MB });
      const startTime = new Date();
      const b = await pg.baseBackup({ waitForArchive: true });
      const stopTime = new Date();
      const version = Number((await pg.query<{ v: string }>('SELECT current_setting($$server_version_num$$) AS v'))[0]!.v);
      records.push(
        await writeFixtureBackup(ctx(), {
          name,
          files: [
            { path: 'backup_label', content: Buffer.from(b.labelFile) },
            { path: 'PG_VERSION', content: readFileSync(join(b.dir, 'PG_VERSION')) },
            { path: 'global/pg_control', content: readFileSync(join(b.dir, 'global', 'pg_control')) },
          ],
          record: {
            systemId,
            pgVersionNum: version,
            walSegSize: MB,
            startLsn: b.startLsn,
            endLsn: b.stopLsn,
            checkpointLsn: /^CHECKPOINT LOCATION: (\S+)$/m.exec(b.labelFile)?.[1] ?? null,
            label: b.label,
            walFirst: b.startWalFile,
            walLast: b.stopWalFile,
            startTime: startTime.toISOString(),
            stopTime: stopTime.toISOString(),
          },
        }),
      );
      rmSync(b.dir, { recursive: true, force: true });
    }
    await pg.generateWal({ bytes: 2 * MB });
    await pg.switchWal();
    await waitForArchiveDone(pg);
    await pg.stop();
    segmentsBefore = (await listWal(ctx())).rows.filter((r) => r.kind === 'segment').map((r) => r.name);
  }, 240_000);

  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('backup-list orders by stop LSN and shows each recovery window up to the newest WAL', async () => {
    const res = await vv('backup-list');
    example('backup-list', res);
    expect(res.code, res.stderr).toBe(0);
    const json = JSON.parse((await vv('backup-list', '--json')).stdout) as {
      backups: Array<{ name: string; status: string; recoveryWindow: { to: string; stop: string; consistent: boolean } }>;
    };
    expect(json.backups.map((b) => b.name)).toEqual(names);
    const last = segmentsBefore[segmentsBefore.length - 1]!;
    for (const b of json.backups) expect(b).toMatchObject({ status: 'complete', recoveryWindow: { stop: 'end', consistent: true } });
    expect(json.backups[0]!.recoveryWindow.to).toBe(`0/${(Number.parseInt(last.slice(16), 16) + 1).toString(16).toUpperCase()}00000`);
    example('backup-show', await vv('backup-show', names[3]!));
  });

  it('backup-verify --all passes; wal-delete refuses WAL the oldest backup needs', async () => {
    const verify = await vv('backup-verify', '--all');
    example('backup-verify', verify);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const refused = await vv('wal-delete', '--before', records[1]!.walFirst);
    example('wal-delete-refused', refused);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`base backup ${names[0]} needs ${records[0]!.walFirst}`);
    const unknown = await vv('backup-show', '20261201T000000F');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("unable to find backup '20261201T000000F'");
  });

  it('expire --retain-full 2 deletes exactly the two oldest backups and the WAL only they need', async () => {
    const dry = await vv('expire', '--retain-full', '2', '--dry-run');
    example('expire-dry-run', dry);
    expect(dry.code, dry.stderr).toBe(0);
    expect((await listWal(ctx())).rows.filter((r) => r.kind === 'segment')).toHaveLength(segmentsBefore.length);

    const res = await vv('expire', '--retain-full', '2');
    example('expire', res);
    expect(res.code, res.stderr).toBe(0);
    const list = JSON.parse((await vv('backup-list', '--json')).stdout) as { backups: Array<{ name: string }> };
    expect(list.backups.map((b) => b.name)).toEqual(names.slice(2));
    const oldestKept = records[2]!.walFirst;
    const after = (await listWal(ctx())).rows.filter((r) => r.kind === 'segment').map((r) => r.name);
    expect(after).toEqual(segmentsBefore.filter((s) => s >= oldestKept));
    expect(after.length).toBeLessThan(segmentsBefore.length);
    // What remains is whole, and the kept backups still verify (their WAL is all there).
    const walVerify = await vv('wal-verify');
    expect(walVerify.code, walVerify.stdout).toBe(0);
    const verify = await vv('backup-verify', '--all');
    expect(verify.code, verify.stdout).toBe(0);
    // Nothing more to do the second time.
    const again = await vv('expire', '--retain-full', '2', '--json');
    const plan = JSON.parse(again.stdout) as { expire: unknown[]; wal: { delete: unknown[] } };
    expect(plan.expire).toEqual([]);
    expect(plan.wal.delete).toEqual([]);
  });

  it('backup-verify exits 128 naming the pack and the file when one byte of a stored pack flips', async () => {
    const key = `backups/${names[3]!}/packs/000000001`;
    const file = join(archiveDir, ...key.split('/'));
    const bytes = readFileSync(file);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0x40;
    writeFileSync(file, bytes);
    const res = await vv('backup-verify', names[3]!);
    example('backup-verify-damaged', res);
    expect(res.code).toBe(128);
    expect(res.stdout).toContain(`${names[3]!}: pack 1: unable to`);
    expect(res.stdout).toContain(`'${key}'`);
    expect(res.stdout).toContain("3 files lost: 'backup_label', 'PG_VERSION', 'global/pg_control'");
    example('wal-show', await vv('wal-show', '--width', '60'));
  });
});
