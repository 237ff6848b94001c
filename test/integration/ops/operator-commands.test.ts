/**
 * The operator commands against an archive made by real PostgreSQL through archive_command =
 * wal-push: a base backup (its .backup label), timeline 1, then a server restored from that backup
 * with restore_command = wal-fetch and promoted to timeline 2, which keeps archiving. On that
 * archive: listing, the per-timeline view, verification (a removed segment, a damaged object found
 * only by --deep), fetching by LSN, check (a correct server, a misconfigured one, another cluster's
 * archive, an inactive slot), status (from PostgreSQL and from an agent's /status) and retention.
 *
 * With WALVAULT_TEST_EXAMPLES=<dir> the readable outputs are also written there (docs/operations.md
 * shows them).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { silentLogger } from '../../../src/common/log.js';
import { createMetrics, serveMetrics } from '../../../src/daemon/metrics.js';
import { receiverMetricsSource } from '../../../src/daemon/stream-metrics.js';
import { fetchSegmentForLsn, locateLsn } from '../../../src/ops/fetch-lsn.js';
import { listWal } from '../../../src/ops/list.js';
import type { StatusReport } from '../../../src/ops/status.js';
import { parseLsn } from '../../../src/segment/lsn.js';
import { PosixStorage } from '../../../src/storage/posix.js';
import type { ReceiverStats } from '../../../src/walstream/receiver.js';
import type { BaseBackup } from '../../../tools/pgcluster/index.js';
import { PgCluster, defaultMajor, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, runCli, waitForArchiveDone, walCommands, writeConfig, type CliResult } from '../../support/walvault.js';

const MB = 1024 * 1024;
const SEGMENT = /^[0-9A-F]{24}$/;

interface ListRow {
  name: string;
  kind: string;
  timeline: number;
  startLsn: string | null;
  key: string;
}

function example(name: string, res: CliResult): void {
  const dir = process.env['WALVAULT_TEST_EXAMPLES'];
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.txt`), `${res.stdout}${res.stderr ? `--- stderr ---\n${res.stderr}` : ''}--- exit ${res.code} ---\n`);
}

function objectPath(archiveDir: string, key: string): string {
  return join(archiveDir, ...key.split('/'));
}

describe('operator commands on a real two-timeline archive (posix)', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-ops-'));
  const archiveDir = pgOwnedDir(join(root, 'archive'));
  const stateDir = pgOwnedDir(join(root, 'state'));
  const configFile = writeConfig(join(root, 'walvault.conf'), {
    archive: `file://${archiveDir}`,
    compression: 'zstd',
    'push-lookahead': 0,
    'fetch-prefetch': 0,
  });
  const { archiveCommand, restoreCommand } = walCommands({ configFile, stateDir });
  const env = { WALVAULT_CONFIG: configFile };
  const vv = (...args: string[]): Promise<CliResult> => runCli('walvault', args, { env });
  let primary: PgCluster;
  let promoted: PgCluster;
  let backup: BaseBackup;
  let systemId: string;
  let switchPoint: string;
  let rows: ListRow[];
  const archiveCtx = (): ArchiveContext => ({
    storage: new PosixStorage({ root: archiveDir }),
    compression: { name: 'zstd', level: 1 },
    log: silentLogger(),
  });

  beforeAll(async () => {
    primary = pool.track(
      await PgCluster.create({ major: defaultMajor(), walSegSizeMb: 1, config: { archive_mode: 'on', archive_command: archiveCommand } }),
    );
    await primary.start();
    await primary.query('CREATE TABLE t (id int)');
    backup = await primary.baseBackup({ waitForArchive: true });
    await primary.generateWal({ bytes: 3 * MB });
    await primary.switchWal();
    await waitForArchiveDone(primary);
    systemId = await primary.systemIdentifier();
    // The old primary retires before the promotion: one writer per timeline.
    await primary.stop();

    promoted = pool.track(
      await PgCluster.fromBackup(backup.dir, {
        recovery: { restoreCommand, targetAction: 'promote' },
        config: { archive_mode: 'on', archive_command: archiveCommand },
      }),
    );
    await promoted.start();
    await promoted.waitForRecoveryEnd({ timeoutMs: 60_000 });
    expect(await promoted.timeline()).toBe(2);
    await promoted.generateWal({ bytes: 2 * MB });
    await promoted.switchWal();
    await waitForArchiveDone(promoted);
    // What PostgreSQL wrote: "1<TAB>0/XXXXXXX<TAB>reason".
    switchPoint = readFileSync(join(promoted.walDir(), '00000002.history'), 'utf8').split('\t')[1]!;
    rows = [...(await listWal(archiveCtx())).rows];
  });

  afterAll(async () => {
    await pool.destroyAll();
    rmSync(root, { recursive: true, force: true });
  });

  it('wal-list lists every archived file in WAL order, marking history and backup files', async () => {
    const res = await vv('wal-list', '--json');
    expect(res.code, res.stderr).toBe(0);
    const listed = (JSON.parse(res.stdout) as { rows: ListRow[] }).rows;
    expect(listed).toEqual(rows);
    const names = rows.map((r) => r.name);
    const tl1 = rows.filter((r) => r.timeline === 1 && r.kind === 'segment').map((r) => r.name);
    expect(tl1.length).toBeGreaterThanOrEqual(4);
    expect(tl1).toEqual([...tl1].sort());
    expect(names).toContain('00000002.history');
    expect(rows.find((r) => r.kind === 'backup')!.startLsn).toBe(backup.startLsn);
    expect(rows.filter((r) => r.timeline === 2 && r.kind === 'segment').length).toBeGreaterThanOrEqual(2);
    // Everything the archiver reported done is listed.
    for (const f of readdirSync(join(promoted.walDir(), 'archive_status'))) {
      if (f.endsWith('.done') && SEGMENT.test(f.slice(0, -5))) expect(names).toContain(f.slice(0, -5));
    }

    const text = await vv('wal-list');
    example('wal-list', text);
    expect(text.stdout).toMatch(/^NAME +TYPE +TLI +START LSN/);
    expect(text.stdout).toMatch(/00000002\.history +history +2/);
    const t2 = JSON.parse((await vv('wal-list', '--timeline', '2', '--json')).stdout) as { rows: ListRow[] };
    expect(t2.rows.every((r) => r.timeline === 2)).toBe(true);
    const window = JSON.parse((await vv('wal-list', '--from', backup.startLsn, '--to', backup.startLsn, '--json')).stdout) as {
      rows: ListRow[];
    };
    expect(window.rows.filter((r) => r.kind === 'segment').map((r) => r.name)).toEqual([backup.startWalFile]);
  });

  it('wal-show gives each timeline its parent and the switch point from the history file, and no gaps', async () => {
    const res = await vv('wal-show', '--json');
    expect(res.code, res.stderr).toBe(0);
    const show = JSON.parse(res.stdout) as { timelines: Array<Record<string, unknown>> };
    expect(show.timelines.map((t) => [t.timeline, t.parent, t.switchPoint, t.gaps])).toEqual([
      [1, null, null, []],
      [2, 1, switchPoint, []],
    ]);
    const text = await vv('wal-show', '--width', '60');
    example('wal-show', text);
    expect(text.stdout).toMatch(/gaps: none/);
    expect(text.stdout).toMatch(/\n {2}TL 1 {2}#+\n {2}TL 2 {2} *#+\n/);
  });

  it('wal-verify passes on the whole archive, headers and in depth', async () => {
    const res = await vv('wal-verify');
    example('wal-verify-ok', res);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/OK: no problems found/);
    const deep = await vv('wal-verify', '--deep', '--parallel', '3', '--json');
    expect(deep.code, deep.stdout + deep.stderr).toBe(0);
    expect(JSON.parse(deep.stdout)).toMatchObject({ ok: true, deep: true, problems: [] });
  });

  it('finds a removed segment: wal-show shows the gap and wal-verify fails with it', async () => {
    const tl1 = rows.filter((r) => r.timeline === 1 && r.kind === 'segment');
    const victim = tl1[Math.floor(tl1.length / 2)]!;
    const aside = join(root, 'aside');
    renameSync(objectPath(archiveDir, victim.key), aside);
    try {
      const show = JSON.parse((await vv('wal-show', '--json')).stdout) as { timelines: Array<{ gaps: unknown[] }> };
      expect(show.timelines[0]!.gaps).toEqual([{ first: victim.name, last: victim.name, segments: 1 }]);
      example('wal-show-gap', await vv('wal-show', '--width', '60'));
      const res = await vv('wal-verify');
      example('wal-verify-gap', res);
      expect(res.code).toBe(128);
      expect(res.stdout).toContain(`[gap] timeline 1 missing ${victim.name}`);
      // Recovery to timeline 2 reads that timeline 1 segment too.
      const t2 = await vv('wal-verify', '--timeline', '2', '--json');
      expect(t2.code).toBe(128);
      expect(JSON.parse(t2.stdout).problems).toEqual([
        { kind: 'gap', timeline: 1, subject: victim.name, message: `missing ${victim.name}` },
      ]);
    } finally {
      renameSync(aside, objectPath(archiveDir, victim.key));
    }
  });

  it('finds a damaged object only with --deep', async () => {
    const victim = rows.filter((r) => r.timeline === 2 && r.kind === 'segment')[0]!;
    const file = objectPath(archiveDir, victim.key);
    const original = readFileSync(file);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 64]! ^= 0x55;
    writeFileSync(file, damaged);
    try {
      expect((await vv('wal-verify')).code).toBe(0);
      const deep = await vv('wal-verify', '--deep');
      example('wal-verify-deep-damaged', deep);
      expect(deep.code).toBe(128);
      expect(deep.stdout).toContain(`[damaged] timeline 2 ${victim.key}: unable to `);
    } finally {
      writeFileSync(file, original);
    }
  });

  it('fetches the segment that holds an LSN, choosing the timeline from the history', async () => {
    const ctx = archiveCtx();
    const firstTl1 = rows.find((r) => r.timeline === 1 && r.kind === 'segment')!;
    const early = await locateLsn(ctx, parseLsn(firstTl1.startLsn!));
    expect(early).toMatchObject({ fileName: firstTl1.name, lookup: { timeline: 1, along: 2 } });
    const atSwitch = await locateLsn(ctx, parseLsn(switchPoint));
    expect(atSwitch.lookup.timeline).toBe(2);
    expect(atSwitch.fileName).toBe(`00000002${atSwitch.lookup.candidates[0]!.slice(8)}`);

    const dest = join(root, 'by-lsn');
    const { result } = await fetchSegmentForLsn(ctx, parseLsn(switchPoint), dest);
    const viaWalFetch = join(root, 'by-name');
    const res = await runCli('wal-fetch', [result.name, viaWalFetch], { env: { ...env, WALVAULT_FETCH_PREFETCH: '0' } });
    expect(res.code, res.stderr).toBe(0);
    expect(readFileSync(dest).equals(readFileSync(viaWalFetch))).toBe(true);
  });

  it('check passes for the server that archives here, and with --switch-wal sees a new segment arrive', async () => {
    const res = await vv('check', '--pg-conninfo', promoted.conninfo(), '--switch-wal', '--switch-wal-timeout', '60');
    example('check-ok', res);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    for (const item of ['postgresql', 'wal_level', 'archive_mode', 'archive_command', 'archiver', 'storage', 'switch-wal', 'identity']) {
      expect(res.stdout).toMatch(new RegExp(`^ok +${item} `, 'm'));
    }
    expect(res.stdout).toMatch(/check passed$/m);
    expect(existsSync(join(archiveDir, 'check')) ? readdirSync(join(archiveDir, 'check')) : []).toEqual([]);
  });

  it('check fails an inactive replication slot', async () => {
    await promoted.query("SELECT pg_create_physical_replication_slot('wv_ops_test', true)");
    const res = await vv('check', '--pg-conninfo', promoted.conninfo(), '--slot', 'wv_ops_test', '--json');
    expect(res.code).toBe(3);
    const slot = (JSON.parse(res.stdout) as { items: Array<{ name: string; status: string; detail: string }> }).items.find(
      (i) => i.name === 'slot',
    )!;
    expect(slot.status).toBe('fail');
    expect(slot.detail).toMatch(/'wv_ops_test' is not active/);
    await promoted.query("SELECT pg_drop_replication_slot('wv_ops_test')");
  });

  it('check fails a server with archiving off, the wrong archive_command, and another cluster’s archive', async () => {
    const other = pool.track(
      await PgCluster.create({ major: defaultMajor(), walSegSizeMb: 1, config: { archive_mode: 'off', archive_command: archiveCommand } }),
    );
    await other.start();
    const otherId = await other.systemIdentifier();
    const res = await vv('check', '--pg-conninfo', other.conninfo());
    example('check-misconfigured', res);
    expect(res.code).toBe(3);
    expect(res.stdout).toMatch(/^FAIL {2}archive_mode +off: nothing is archived/m);
    expect(res.stdout).toMatch(/^ok +archive_command +WALVAULT_NODE=.*wal-push %p$/m);
    expect(res.stdout).toMatch(
      new RegExp(`^FAIL {2}identity +the archive belongs to database system ${systemId}, this server is ${otherId}`, 'm'),
    );
    expect(res.stdout).toMatch(/check FAILED: archive_mode, identity$/m);

    await other.query("ALTER SYSTEM SET archive_command = '/bin/true'");
    await other.query('SELECT pg_reload_conf()');
    const wrong = await vv('check', '--pg-conninfo', other.conninfo(), '--json');
    expect(wrong.code).toBe(3);
    const items = (JSON.parse(wrong.stdout) as { items: Array<{ name: string; status: string; detail: string }> }).items;
    expect(items.find((i) => i.name === 'archive_command')).toEqual({
      name: 'archive_command',
      status: 'fail',
      detail: "does not run wal-push: '/bin/true'",
    });
    await other.destroy();
  });

  it('status reports the last archived segment, lag and queue from PostgreSQL and the archive', async () => {
    await promoted.switchWal();
    await waitForArchiveDone(promoted);
    const res = await vv('status', '--pg-conninfo', promoted.conninfo(), '--json');
    expect(res.code, res.stderr).toBe(0);
    const s = JSON.parse(res.stdout) as StatusReport;
    expect(s).toMatchObject({ source: 'postgresql', state: 'ok', queue: 0, lastError: null, server: { timeline: 2, inRecovery: false } });
    expect(s.lastArchived!.segment).toBe(
      (await promoted.query<{ f: string }>('SELECT last_archived_wal AS f FROM pg_stat_archiver'))[0]!.f,
    );
    expect(s.lag.bytes).toBeGreaterThanOrEqual(0);
    expect(s.lag.bytes).toBeLessThan(MB);
    expect(s.lag.seconds).toBe(0);
    expect(s.archiver!.failedCount).toBe(0);
    const text = await vv('status', '--pg-conninfo', promoted.conninfo());
    example('status', text);
    expect(text.stdout).toMatch(/^state: +ok$/m);
  });

  it('status reads a running agent’s /status endpoint', async () => {
    const stats: ReceiverStats = {
      connected: true,
      timeline: 2,
      receivedLsn: parseLsn('0/2A00000'),
      flushedLsn: parseLsn('0/2A00000'),
      archivedLsn: parseLsn('0/2900000'),
      serverLsn: parseLsn('0/2A00100'),
      bytesReceived: 5 * MB,
      segmentsArchived: 7,
      bytesArchived: 7 * MB,
      alreadyArchived: 0,
      uploadErrors: 0,
      pendingUploads: 1,
      lastError: null,
      lastArchivedSegment: '000000020000000000000028',
      lastArchivedAt: new Date(Date.now() - 3000).toISOString(),
      reconnects: 0,
    };
    const server = await serveMetrics(
      createMetrics('stream', { archive: `file://${archiveDir}`, slot: '' }),
      receiverMetricsSource(stats),
      '127.0.0.1',
      0,
    );
    try {
      const port = (server.address() as AddressInfo).port;
      const res = await vv('status', '--agent', `http://127.0.0.1:${port}`, '--json');
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({
        source: 'agent',
        state: 'ok',
        queue: 1,
        lastArchived: { segment: '000000020000000000000028', endLsn: '0/2900000' },
        lag: { bytes: 0x100100 },
      });
      example('status-agent', await vv('status', '--agent', `http://127.0.0.1:${port}`));
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('wal-delete shows its plan, refuses WAL the newest backup needs, and keeps what is still needed', async () => {
    const before = readdirSync(join(archiveDir, 'wal', '00000001'), { recursive: true }).length;
    const dry = await vv('wal-delete', '--before', backup.startLsn, '--dry-run');
    example('wal-delete-dry-run', dry);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry run: nothing deleted$/m);
    expect(readdirSync(join(archiveDir, 'wal', '00000001'), { recursive: true }).length).toBe(before);

    const lastTl2 = rows.filter((r) => r.timeline === 2 && r.kind === 'segment').slice(-1)[0]!.name;
    const refused = await vv('wal-delete', '--before', lastTl2);
    example('wal-delete-refused', refused);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/the newest base backup \(.*\.backup\) needs WAL/);

    const cut = await vv('wal-delete', '--before', backup.startLsn, '--json');
    expect(cut.code, cut.stderr).toBe(0);
    const deleted = (JSON.parse(cut.stdout) as { delete: ListRow[] }).delete.map((o) => o.name);
    expect(deleted.length).toBeGreaterThan(0);
    expect(deleted.every((n) => n < backup.startWalFile)).toBe(true);
    expect((await vv('wal-verify')).code).toBe(0);

    // Everything, forced: the newest segment of the newest timeline and its history file stay.
    const all = await vv('wal-delete', '--before', 'FF/0', '--force', '--batch', '3');
    example('wal-delete-all', all);
    expect(all.code, all.stderr).toBe(0);
    const left = (JSON.parse((await vv('wal-list', '--json')).stdout) as { rows: ListRow[] }).rows;
    const newest = left.filter((r) => r.kind === 'segment');
    expect(newest).toHaveLength(1);
    expect(newest[0]!.timeline).toBe(2);
    expect(left.map((r) => r.name)).toContain('00000002.history');
    expect(existsSync(join(archiveDir, 'archive.info'))).toBe(true);
    expect(existsSync(join(archiveDir, 'archive.info.copy'))).toBe(true);
    const verify = await vv('wal-verify');
    expect(verify.code, verify.stdout).toBe(0);
  });
});
