/**
 * What an operator and a dashboard see of the long-running agents, from the real binaries against a
 * real PostgreSQL: one start-up line, honest error lines, readable logs on a terminal, and /metrics
 * that carry every series docs/monitoring/ (Grafana dashboard, Prometheus alerts) queries.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFixture } from '../../support/fixtures.js';
import { afterAll, describe, expect, it } from 'vitest';
import { PgCluster, defaultMajor, useClusterPool } from '../../support/cluster.js';
import { pgOwnedDir, REPO, runCli } from '../../support/walvault.js';
import { type Agent, freePort, startAgent, waitFor } from '../stream/agent.js';
import { giveToUser, pgUser, spawnIdentity } from '../../../tools/pgcluster/user.js';

const SEG = 1024 * 1024;
const ENTRY = join(REPO, 'dist', 'cli', 'walvault.js');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

/** Metric names a PromQL expression uses: ours, Node's and the process's, and Prometheus's `up`. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(walvault_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+|up)\b/g)].map((m) => m[1]!);
}

function monitoringQueries(): { file: string; expr: string }[] {
  const dir = join(REPO, 'docs', 'monitoring');
  const out: { file: string; expr: string }[] = [];
  const dash = JSON.parse(readFileSync(join(dir, 'walvault-dashboard.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
  for (const p of dash.panels) for (const t of p.targets) out.push({ file: 'walvault-dashboard.json', expr: t.expr });
  for (const line of readFileSync(join(dir, 'walvault-alerts.yml'), 'utf8').split('\n')) {
    const m = /^\s*expr:\s*(.+)$/.exec(line);
    if (m) out.push({ file: 'walvault-alerts.yml', expr: m[1]! });
  }
  return out;
}

/** Sample lines of a /metrics text: series (name plus labels) -> value. */
async function samples(port: number): Promise<Map<string, number>> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

const names = (s: Map<string, number>): Set<string> => new Set([...s.keys()].map((k) => k.replace(/\{.*$/, '')));
const one = (s: Map<string, number>, series: string): number => {
  const v = s.get(series);
  if (v === undefined) throw new Error(`no series ${series} in:\n${[...s.keys()].filter((k) => k.startsWith('walvault_')).join('\n')}`);
  return v;
};

function jsonLines(stderr: string): { msg: string; level: string; [k: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; level: string });
}

describe('the agents as an operator sees them', () => {
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-monitoring-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('stream: an unusable spool directory is fatal at once, with its own message, not retried as a lost connection', async () => {
    writeFileSync(join(root, 'a-file'), 'x');
    const port = await freePort(); // nothing listens there
    const res = await runCli(
      'walvault',
      [
        'stream',
        '--archive',
        `file://${root}/archive-x`,
        '--pg-conninfo',
        `host=127.0.0.1 port=${port}`,
        '--spool-dir',
        join(root, 'a-file', 'spool'),
        '--log-format',
        'json',
      ],
      { env: { WALVAULT_CONFIG: '/dev/null' }, timeoutMs: 30_000 },
    );
    expect(res.code, res.stderr).toBe(3);
    const errorLines = res.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    expect(errorLines).toEqual([expect.stringMatching(/^walvault stream: unable to create spool directory '.*a-file\/spool': ENOTDIR/)]);
    expect(res.stderr).not.toMatch(/reconnect|retrying/);
    expect(jsonLines(res.stderr).map((l) => l.msg)).toEqual(['walvault stream starting']);
  });

  it('stream: a server that never answered is "unable to connect", not "lost"; on a terminal the log is text', async () => {
    const port = await freePort();
    const metricsPort = await freePort();
    // `script` gives the agent a real pseudo-terminal as stderr, as an operator's shell does.
    const cmd = [
      process.execPath,
      ENTRY,
      'stream',
      '--archive',
      `file://${root}/archive-y`,
      '--pg-conninfo',
      `'host=127.0.0.1 port=${port} password=sekrit'`,
      '--spool-dir',
      join(root, 'spool-y'),
      '--metrics-port',
      String(metricsPort),
    ].join(' ');
    // `timeout` ends the agent (SIGTERM, a clean stop) once the test has seen what it needs.
    const child = spawn('script', ['-qec', `timeout -s TERM 8 ${cmd}`, '/dev/null'], {
      env: { ...process.env, WALVAULT_CONFIG: '/dev/null' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await waitFor(
        async () => /unable to connect to the server; retrying[\s\S]*unable to connect to the server; retrying/.test(out),
        30_000,
        'two retries',
      );
      const m = await samples(metricsPort);
      expect(one(m, `walvault_connected{archive="file://${root}/archive-y",slot=""}`)).toBe(0);
      expect(one(m, `walvault_reconnects_total{archive="file://${root}/archive-y",slot=""}`)).toBeGreaterThanOrEqual(1);
    } finally {
      await exited;
    }
    const lines = out.split(/\r?\n/).filter((l) => l.trim() !== '');
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z INFO  walvault stream: walvault stream starting version=${VERSION} archive=file://${root}/archive-y slot=null spool=${root}/spool-y metrics=http://127.0.0.1:${metricsPort}/metrics$`,
      ),
    );
    expect(lines[1]).toMatch(
      /^\S+Z WARN  walvault stream\/walstream: unable to connect to the server; retrying err="unable to connect for replication to 127.0.0.1:\d+/,
    );
    expect(out).not.toContain('lost');
    expect(out).not.toContain('sekrit');
    expect(out).not.toContain('{"level"');
  });

  it('daemon: a missing data directory is a one-line configuration error (exit 2)', async () => {
    const res = await runCli('walvault', ['daemon', '--archive', `file://${root}/archive-z`, '--pgdata', join(root, 'missing')], {
      env: { WALVAULT_CONFIG: '/dev/null' },
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `walvault daemon: unable to use data directory '${join(root, 'missing')}': ENOENT: no such file or directory, stat '${join(root, 'missing')}' [WV_ERR_CONFIG]\n`,
    );
  });
});

describe('walvault status when it cannot check', () => {
  const root = mkdtempSync(join(tmpdir(), 'walvault-status-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('PostgreSQL unreachable: state UNKNOWN with the reason, exit 3, never "ok" with unknown lag', async () => {
    const seg = '000000010000000000000008';
    const walFile = join(mkdtempSync(join(root, 'wal-')), seg);
    writeFileSync(walFile, loadFixture(15, seg));
    mkdirSync(join(root, 'archive'));
    const env = { WALVAULT_CONFIG: '/dev/null', WALVAULT_ARCHIVE: `file://${join(root, 'archive')}`, WALVAULT_NO_FASTPATH: '1' };
    expect((await runCli('wal-push', [walFile], { env })).code).toBe(0);
    const port = await freePort(); // nothing listens there
    const text = await runCli('walvault', ['status', '--pg-conninfo', `host=127.0.0.1 port=${port} connect_timeout=5`], { env });
    expect(text.code, text.stderr).toBe(3);
    expect(text.stdout).toMatch(/^state: +UNKNOWN: the lag cannot be measured without PostgreSQL or the agent \(postgresql: .*\)$/m);
    expect(text.stdout).toMatch(/^last archived: +000000010000000000000008 \(up to 0\/900000\)/m);
    expect(text.stdout).not.toMatch(/\?|state: +ok/);
    const json = await runCli('walvault', ['status', '--pg-conninfo', `host=127.0.0.1 port=${port} connect_timeout=5`, '--json'], { env });
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ source: 'archive', state: 'unknown', lag: { bytes: null, seconds: null } });
  });
});

describe('metrics of a real daemon and a real stream agent', () => {
  const pool = useClusterPool();
  const root = pgOwnedDir(mkdtempSync('/tmp/walvault-metrics-'));
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('export what docs/monitoring queries, with standard names, labels and honest counters', async () => {
    const user = pgUser();
    const pushArchive = pgOwnedDir(join(root, 'push-archive'));
    const streamArchive = pgOwnedDir(join(root, 'stream-archive'));
    const stateBase = pgOwnedDir(join(root, 'state'));
    const cluster = pool.track(
      await PgCluster.create({
        major: defaultMajor(),
        walSegSizeMb: 1,
        config: { archive_mode: 'on', archive_command: '/bin/false', wal_keep_size: '128MB' },
      }),
    );
    await cluster.start();
    await cluster.generateWal({ bytes: 4 * SEG });
    await cluster.switchWal();
    const ready = readdirSync(join(cluster.walDir(), 'archive_status'))
      .filter((f) => /^[0-9A-F]{24}\.ready$/.test(f))
      .map((f) => f.slice(0, 24))
      .sort();
    expect(ready.length).toBeGreaterThanOrEqual(3);

    // One segment is archived beforehand from a copy (no marker): the daemon must find it there.
    const copy = join(pgOwnedDir(join(root, 'copy')), ready[0]!);
    copyFileSync(join(cluster.walDir(), ready[0]!), copy);
    giveToUser(copy, user);
    await new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [ENTRY, 'wal-push', copy],
        {
          env: { ...process.env, WALVAULT_CONFIG: '/dev/null', WALVAULT_ARCHIVE: `file://${pushArchive}`, WALVAULT_PUSH_LOOKAHEAD: '0' },
          ...spawnIdentity(user),
        },
        (err, _o, stderr) => (err ? reject(new Error(`wal-push: ${stderr}`)) : resolve()),
      ),
    );

    const daemonPort = await freePort();
    const daemon = spawn(process.execPath, [ENTRY, 'daemon', '--pgdata', cluster.dataDir, '--metrics-port', String(daemonPort)], {
      env: { ...process.env, WALVAULT_CONFIG: '/dev/null', WALVAULT_ARCHIVE: `file://${pushArchive}`, WALVAULT_STATE_DIR: stateBase },
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: '/',
      ...spawnIdentity(user),
    });
    children.push(daemon);
    let daemonLog = '';
    daemon.stderr!.on('data', (d: Buffer) => (daemonLog += d.toString()));
    let daemonMetrics: Map<string, number>;
    const pa = `archive="file://${pushArchive}"`;
    try {
      const st = await waitFor(
        async () => {
          const s = (await fetch(`http://127.0.0.1:${daemonPort}/status`).then((r) => r.json())) as {
            filesArchived: number;
            alreadyArchived: number;
          };
          return s.filesArchived + s.alreadyArchived >= ready.length ? s : undefined;
        },
        60_000,
        `the daemon to archive ${ready.length} files`,
      );
      daemonMetrics = await samples(daemonPort);
      expect(st.alreadyArchived).toBe(1);
      expect(one(daemonMetrics, `walvault_already_archived_total{${pa}}`)).toBe(1);
      expect(one(daemonMetrics, `walvault_segments_archived_total{${pa}}`)).toBe(st.filesArchived);
      // Only uploaded bytes: the deduplicated segment is not in it.
      expect(one(daemonMetrics, `walvault_bytes_archived_total{${pa}}`)).toBe(st.filesArchived * SEG);
      expect(one(daemonMetrics, `walvault_upload_duration_seconds_count{${pa}}`)).toBe(st.filesArchived + st.alreadyArchived);
      expect(one(daemonMetrics, `walvault_upload_duration_seconds_sum{${pa}}`)).toBeGreaterThan(0);
      const last = one(daemonMetrics, `walvault_last_archived_timestamp_seconds{${pa}}`);
      expect(Math.abs(Date.now() / 1000 - last)).toBeLessThan(300);
      expect(one(daemonMetrics, `walvault_build_info{version="${VERSION}",node="${process.version}",agent="daemon"}`)).toBe(1);
      // No stream-only gauges stuck at 0 in the daemon.
      for (const n of ['walvault_connected', 'walvault_reconnects_total', 'walvault_archive_lag_bytes', 'walvault_received_lsn_bytes']) {
        expect(names(daemonMetrics).has(n), n).toBe(false);
      }
      const start = jsonLines(daemonLog).find((l) => l.msg === 'walvault daemon starting');
      expect(start).toMatchObject({
        version: VERSION,
        archive: `file://${pushArchive}`,
        pgdata: cluster.dataDir,
        metrics: `http://127.0.0.1:${daemonPort}/metrics`,
      });
    } finally {
      const exit = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      await exit;
    }

    const streamPort = await freePort();
    const agent: Agent = startAgent({
      cluster,
      archive: `file://${streamArchive}`,
      spoolDir: pgOwnedDir(join(root, 'spool')),
      slot: 'walvault',
      createSlot: true,
      metricsPort: streamPort,
    });
    const sa = `archive="file://${streamArchive}",slot="walvault"`;
    try {
      const start = await agent.waitForLog((l) => l.msg === 'walvault stream starting', 20_000, 'the start-up line');
      expect(start).toMatchObject({
        version: VERSION,
        archive: `file://${streamArchive}`,
        slot: 'walvault',
        spool: join(root, 'spool'),
        metrics: `http://127.0.0.1:${streamPort}/metrics`,
      });
      await agent.waitForLog((l) => l.msg === 'streaming', 20_000, "'streaming'");
      await cluster.generateWal({ bytes: 2 * SEG });
      await cluster.switchWal();
      await agent.waitForLog((l) => l.msg === 'archived', 60_000, 'a segment archived');
      // A server restart: now the connection was there, so it is "lost", and counted.
      await cluster.restart();
      await agent.waitForLog(
        (l) => l.msg === 'replication connection lost; reconnecting' || l.msg === 'the server ended the stream; reconnecting',
        30_000,
        'the loss',
      );
      const streamMetrics = await waitFor(
        async () => {
          const m = await samples(streamPort);
          return m.get(`walvault_connected{${sa}}`) === 1 && (m.get(`walvault_reconnects_total{${sa}}`) ?? 0) >= 1 ? m : undefined;
        },
        60_000,
        'the agent to reconnect',
      );
      expect(one(streamMetrics, `walvault_segments_archived_total{archive="file://${streamArchive}"}`)).toBeGreaterThanOrEqual(1);
      expect(one(streamMetrics, `walvault_archive_lag_bytes{${sa}}`)).toBeGreaterThanOrEqual(0);
      expect(one(streamMetrics, `walvault_build_info{version="${VERSION}",node="${process.version}",agent="stream"}`)).toBe(1);

      // Standard process and Node names, not prefixed copies.
      const all = new Set([...names(daemonMetrics!), ...names(streamMetrics)]);
      for (const n of [
        'process_cpu_seconds_total',
        'process_resident_memory_bytes',
        'nodejs_heap_size_used_bytes',
        'nodejs_eventloop_lag_p99_seconds',
      ]) {
        expect(all.has(n), n).toBe(true);
      }
      expect([...all].filter((n) => n.startsWith('walvault_process_'))).toEqual([]);

      // Every series the dashboard and the alert rules use exists on a running agent.
      const queries = monitoringQueries();
      expect(queries.length).toBeGreaterThanOrEqual(15);
      const missing = queries.flatMap((q) =>
        metricNames(q.expr)
          .filter((n) => n !== 'up' && !all.has(n))
          .map((n) => `${q.file}: ${n} in ${q.expr}`),
      );
      expect(missing).toEqual([]);
      expect(await agent.stop()).toBe(0);
    } finally {
      await agent.kill9();
    }
  });
});
