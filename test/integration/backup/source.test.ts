/**
 * readBaseBackup against real servers of both protocol generations (13: keyword syntax, one
 * CopyOut per tablespace; 15 and 17: typed CopyOut messages): every file PostgreSQL's own
 * backup_manifest lists arrives with its size and SHA-256, tablespaces under their oid, and page
 * checksum failures fail the backup naming the file.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { supportedMajors, useCluster } from '../../support/cluster.js';
import { silentLogger } from '../../../src/common/log.js';
import { AbortedError, BackupError, ReplicationError } from '../../../src/common/errors.js';
import { ReplicationConnection } from '../../../src/postgres/replication/connection.js';
import { readBaseBackup } from '../../../src/backup/source.js';
import type { BackupEnd, BackupEntrySink, BackupStart, EntryHeader } from '../../../src/backup/entry-sink.js';

const log = silentLogger();
const BACKUP_MAJORS = [13, 15, 17];
const majors = supportedMajors().filter((m) => BACKUP_MAJORS.includes(m));

interface Received {
  header: EntryHeader;
  sha256?: string;
  bytes?: number;
}

/** Hashes every file as it streams; fails if the source ever calls it while a call is pending. */
class CollectingSink implements BackupEntrySink {
  start: BackupStart | undefined;
  endPos: BackupEnd | undefined;
  entries: Received[] = [];
  manifestChunks: Buffer[] = [];
  progressValues: number[] = [];
  backupLabel = '';
  private hash: ReturnType<typeof createHash> | undefined;
  private current: Received | undefined;
  private pending = false;
  private calls = 0;

  private async guard(fn: () => void): Promise<void> {
    if (this.pending) throw new Error('sink called while a previous call was pending');
    this.pending = true;
    // Every 64th call really waits, so the source has to hold the socket.
    if (++this.calls % 64 === 0) await new Promise((r) => setTimeout(r, 1));
    else await Promise.resolve();
    fn();
    this.pending = false;
  }
  begin(start: BackupStart): Promise<void> {
    return this.guard(() => (this.start = start));
  }
  entry(header: EntryHeader): Promise<void> {
    return this.guard(() => {
      this.current = { header };
      this.entries.push(this.current);
      if (header.type === 'file') {
        this.hash = createHash('sha256');
        this.current.bytes = 0;
      }
    });
  }
  data(chunk: Buffer): Promise<void> {
    // Hash synchronously: the chunk is only valid during the call.
    this.hash!.update(chunk);
    if (this.current!.header.path === 'backup_label' && this.current!.header.tablespace === null)
      this.backupLabel += chunk.toString('utf8');
    this.current!.bytes! += chunk.length;
    return this.guard(() => undefined);
  }
  entryEnd(): Promise<void> {
    return this.guard(() => {
      this.current!.sha256 = this.hash!.digest('hex');
      this.hash = undefined;
    });
  }
  manifest(chunk: Buffer): Promise<void> {
    this.manifestChunks.push(Buffer.from(chunk));
    return this.guard(() => undefined);
  }
  progress(doneBytes: number): void {
    this.progressValues.push(doneBytes);
  }
  end(end: BackupEnd): Promise<void> {
    return this.guard(() => (this.endPos = end));
  }
}

interface ManifestFile {
  Path?: string;
  'Encoded-Path'?: string;
  Size: number;
  'Checksum-Algorithm': string;
  Checksum: string;
}

/** The manifest's own path for what the sink received: tablespace files live under pg_tblspc/<oid>/. */
function manifestPath(r: Received): string {
  return r.header.tablespace === null ? r.header.path : `pg_tblspc/${r.header.tablespace}/${r.header.path}`;
}

describe.each(majors)('PostgreSQL %i: readBaseBackup', (major) => {
  const h = useCluster({ major, initdbArgs: ['--data-checksums'] });
  let tablespaceOid = 0;
  let tablespaceDir = '';

  it('delivers every file the server manifest lists, with size and SHA-256, tablespace under its oid', async () => {
    const c = h.cluster;
    tablespaceDir = c.makeDir('ts1');
    await c.query(`CREATE TABLESPACE ts1 LOCATION '${tablespaceDir}'`);
    await c.query('CREATE TABLE t_main AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g');
    await c.query('CREATE TABLE t_ts TABLESPACE ts1 AS SELECT g AS id, repeat(md5(g::text), 4) AS v FROM generate_series(1, 3000) g');
    await c.query('CREATE INDEX t_ts_id ON t_ts (id) TABLESPACE ts1');
    const [ts] = await c.query<{ oid: string }>("SELECT oid::text FROM pg_tablespace WHERE spcname = 'ts1'");
    tablespaceOid = Number(ts!.oid);
    const [rel] = await c.query<{ p: string }>("SELECT pg_relation_filepath('t_ts') AS p");

    const conn = await ReplicationConnection.connect(c.conninfo(), log);
    const sink = new CollectingSink();
    try {
      const result = await readBaseBackup(conn, { label: "walvault 'test'", checkpoint: 'fast' }, sink, log);
      expect(result.serverVersionNum).toBeGreaterThanOrEqual(major * 10000);
      expect(sink.endPos).toEqual({ endLsn: result.endLsn, endTimeline: result.endTimeline });
    } finally {
      await conn.close();
    }

    // The start position and the tablespace rows, data directory last.
    expect(sink.start!.startTimeline).toBe(1);
    expect(sink.start!.startLsn <= sink.endPos!.endLsn).toBe(true);
    expect(sink.start!.tablespaces.map((t) => [t.oid, t.location])).toEqual([
      [tablespaceOid, tablespaceDir],
      [null, null],
    ]);
    expect(sink.start!.tablespaces.every((t) => (t.sizeBytes ?? 0) > 0)).toBe(true);

    // base.tar: backup_label first, global/pg_control last, pg_wal an empty directory, the tablespace as a symlink.
    const base = sink.entries.filter((e) => e.header.tablespace === null);
    expect(base[0]!.header.path).toBe('backup_label');
    expect(base[base.length - 1]!.header.path).toBe('global/pg_control');
    expect(base[0]!.header.type).toBe('file');
    // The label survives quoting; no WAL waiting was asked for.
    expect(sink.backupLabel).toMatch(/^START WAL LOCATION: /);
    expect(sink.backupLabel).toContain("\nLABEL: walvault 'test'\n");
    // Tablespaces come first, the data directory last (header order).
    expect(sink.entries[0]!.header.tablespace).toBe(tablespaceOid);
    expect(base.find((e) => e.header.path === 'pg_wal')?.header).toMatchObject({ type: 'dir', size: 0, target: null });
    expect(base.filter((e) => e.header.path.startsWith('pg_wal/') && e.header.type === 'file')).toEqual([]);
    expect(base.find((e) => e.header.path === `pg_tblspc/${tablespaceOid}`)?.header).toMatchObject({
      type: 'link',
      target: tablespaceDir,
    });
    expect(base.every((e) => !e.header.path.endsWith('/'))).toBe(true);
    expect(base.find((e) => e.header.path === 'PG_VERSION')?.header.mode).toBe(0o600);

    // The tablespace's files arrive under its oid, relative to its location.
    const inTs = sink.entries.filter((e) => e.header.tablespace === tablespaceOid);
    const relInTs = rel!.p.replace(`pg_tblspc/${tablespaceOid}/`, '');
    expect(inTs.find((e) => e.header.path === relInTs)?.header.type).toBe('file');
    expect(inTs.find((e) => e.header.path === relInTs)!.bytes).toBeGreaterThan(8192);

    // Every file the server's manifest lists matches path, size and SHA-256 of what arrived, and nothing else arrived.
    const manifestBytes = Buffer.concat(sink.manifestChunks);
    const text = manifestBytes.toString('utf8');
    const checksumAt = text.lastIndexOf('"Manifest-Checksum"');
    const manifest = JSON.parse(text) as { Files: ManifestFile[]; 'Manifest-Checksum': string };
    expect(createHash('sha256').update(manifestBytes.subarray(0, checksumAt)).digest('hex')).toBe(manifest['Manifest-Checksum']);
    const files = new Map(sink.entries.filter((e) => e.header.type === 'file').map((e) => [manifestPath(e), e]));
    expect(manifest.Files.length).toBeGreaterThan(100);
    for (const f of manifest.Files) {
      const p = f.Path ?? Buffer.from(f['Encoded-Path']!, 'hex').toString('utf8');
      const got = files.get(p);
      expect(got, p).toBeDefined();
      expect(f['Checksum-Algorithm']).toBe('SHA256');
      expect([p, got!.bytes, got!.sha256]).toEqual([p, f.Size, f.Checksum]);
    }
    expect([...files.keys()].sort()).toEqual(manifest.Files.map((f) => f.Path ?? '').sort());
    expect(manifest.Files.some((f) => f.Path === rel!.p)).toBe(true);

    // Progress rises to at least the data sent (PG15+: the server's count; 13: bytes received).
    expect(sink.progressValues.length).toBeGreaterThan(0);
    const last = sink.progressValues[sink.progressValues.length - 1]!;
    expect([...sink.progressValues].sort((a, b) => a - b)).toEqual(sink.progressValues);
    const dataBytes = [...files.values()].reduce((s, e) => s + e.bytes!, 0);
    expect(last).toBeGreaterThanOrEqual(dataBytes);
  });

  it('drops the connection when the sink fails, and the server ends its side of the backup', async () => {
    const boom = new Error('sink full');
    class FailingSink extends CollectingSink {
      private n = 0;
      override data(chunk: Buffer): Promise<void> {
        if (++this.n === 20) return Promise.reject(boom);
        return super.data(chunk);
      }
    }
    const conn = await ReplicationConnection.connect(h.cluster.conninfo(), log);
    try {
      const err = await readBaseBackup(conn, { label: 'aborted', checkpoint: 'fast' }, new FailingSink(), log).catch((e: unknown) => e);
      expect(err).toBe(boom);
    } finally {
      await conn.close();
    }
    // The walsender notices the dropped connection and aborts the backup.
    for (let i = 0; ; i++) {
      const [row] = await h.cluster.query<{ n: string }>('SELECT count(*)::text AS n FROM pg_stat_progress_basebackup');
      if (row!.n === '0') break;
      if (i > 300) throw new Error('the server still runs the aborted base backup');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('takes a spread-checkpoint backup with a rate limit, and aborts through the signal', async () => {
    const conn = await ReplicationConnection.connect(h.cluster.conninfo(), log);
    try {
      const sink = new CollectingSink();
      await readBaseBackup(conn, { label: 'spread', checkpoint: 'spread', maxRateKbps: 1_048_576 }, sink, log);
      expect(sink.backupLabel).toContain('\nLABEL: spread\n');
    } finally {
      await conn.close();
    }
    const conn2 = await ReplicationConnection.connect(h.cluster.conninfo(), log);
    const ac = new AbortController();
    class AbortingSink extends CollectingSink {
      override entry(header: EntryHeader): Promise<void> {
        if (this.entries.length === 5) ac.abort();
        return super.entry(header);
      }
    }
    try {
      const err = await readBaseBackup(conn2, { label: 'stop', checkpoint: 'fast', signal: ac.signal }, new AbortingSink(), log).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AbortedError);
      expect((err as Error).message).toBe("unable to take base backup 'stop': aborted");
    } finally {
      await conn2.close();
    }
  });

  it('fails with a one-line error for a role without REPLICATION', async () => {
    await h.cluster.query('CREATE ROLE no_repl LOGIN');
    const err = await ReplicationConnection.connect(h.cluster.conninfo({ user: 'no_repl' }), log).then(
      async (conn) => {
        await conn.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ReplicationError);
    const e = err as ReplicationError;
    expect(e.message).toMatch(
      /^unable to connect for replication to .* as no_repl: .*(must be superuser or replication role to start walsender|permission denied to start WAL sender) \(the role needs the REPLICATION attribute\)$/,
    );
    expect(e.message).not.toContain('\n');
    expect(e.retryable).toBe(false);
  });

  it('fails with a one-line retryable error when max_wal_senders is exhausted', async () => {
    const [row] = await h.cluster.query<{ n: string }>("SELECT current_setting('max_wal_senders') AS n");
    const held: ReplicationConnection[] = [];
    try {
      for (let i = 0; i < Number(row!.n); i++) held.push(await ReplicationConnection.connect(h.cluster.conninfo(), log));
      const err = await ReplicationConnection.connect(h.cluster.conninfo(), log).then(
        async (conn) => {
          held.push(conn);
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ReplicationError);
      const e = err as ReplicationError;
      expect(e.message).toMatch(/^unable to connect for replication to .*: .*exceeds "?max_wal_senders"? \(currently \d+\)$/);
      expect(e.retryable).toBe(true);
    } finally {
      await Promise.all(held.map((c) => c.close()));
    }
  });

  it('fails naming the file when a data page checksum is wrong, after all data arrived', async () => {
    const c = h.cluster;
    await c.query('CREATE TABLE t_bad AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 1000) g');
    await c.query('CHECKPOINT');
    const [rel] = await c.query<{ p: string }>("SELECT pg_relation_filepath('t_bad') AS p");
    await c.stop();
    // Flip bytes in the first page's tuple area (after the 24-byte page header).
    const fh = await open(join(c.dataDir, rel!.p), 'r+');
    try {
      const page = Buffer.alloc(8192);
      await fh.read(page, 0, 8192, 0);
      for (let i = 4000; i < 4016; i++) page[i] = page[i]! ^ 0xff;
      await fh.write(page, 0, 8192, 0);
    } finally {
      await fh.close();
    }
    await c.start();

    const conn = await ReplicationConnection.connect(c.conninfo(), log);
    const sink = new CollectingSink();
    try {
      const err = await readBaseBackup(conn, { label: 'corrupt', checkpoint: 'fast' }, sink, log).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BackupError);
      const e = err as BackupError;
      expect(e.message).toMatch(/^unable to take base backup 'corrupt': page checksum verification failed in /);
      expect(e.message).toContain(rel!.p);
      expect(e.exitCode).toBe(128);
      // The server reports it after the whole stream: the file itself was delivered, the backup never ended.
      expect(sink.entries.some((x) => x.header.path === rel!.p)).toBe(true);
      expect(sink.endPos).toBeUndefined();
      // The connection stays usable (the server sent ReadyForQuery after the error).
      expect((await conn.identifySystem()).timeline).toBe(1);
    } finally {
      await conn.close();
    }
  });
});

describe('readBaseBackup test majors', () => {
  it('covers at least one of 13, 15, 17', () => {
    expect(majors.length, `WALVAULT_TEST_MAJORS/installed: ${supportedMajors().join(',')}`).toBeGreaterThan(0);
  });
});
