/**
 * A real Ceph RADOS Gateway for integration tests: a private throwaway cluster of one monitor, one
 * in-memory OSD (memstore) and one radosgw, all on 127.0.0.1 under a temp directory of its own.
 * Unlike s3rver it is an S3 service people run in production, and it honours conditional writes
 * (a second `If-None-Match: *` PUT gets 412), so tests of atomic create-only puts run here.
 *
 *   const rgw = await startRgw({ bucket: 'wal' });   // ~20 s: start once per test file
 *   new S3Client({ endpoint: rgw.endpoint, forcePathStyle: true, region: 'us-east-1',
 *                  credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } });
 *   await rgw.createBucket('another');
 *   await rgw.stop();                                 // in afterAll; also removes the directory
 *
 * The handle has the shape of s3rver's (test/support/s3server.ts, both are an S3TestServer), so a
 * test can run against either; `suspend()`/`resume()` kill and restart only radosgw (the objects
 * live in the OSD and survive). Needs the Debian packages named in RGW_INSTALL; use
 * `rgwMissing()` to decide whether to run (see s3servers.ts for the CI rule).
 *
 * Runs the daemons as the current user (root included: without --setuser they do not switch). Auth
 * is off (`auth_*_required = none`); then the messenger must be told `crc secure` for every mode,
 * or radosgw waits 300 s for a connection mode nobody offers. If the test process dies without
 * stop(), a detached guard process notices its stdin closing and kills the daemons.
 * WALVAULT_RGW_DEBUG=1 prints how long each phase of a start took.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { accessSync, constants as fsConstants, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import path from 'node:path';
import { createBucket, type S3TestServer } from './s3bucket.js';

export const RGW_INSTALL = 'apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common';
const BINARIES = ['ceph', 'ceph-mon', 'ceph-osd', 'monmaptool', 'radosgw', 'radosgw-admin'] as const;
/** For a whole start (or a resume): below vitest's 120 s hook timeout, so our error and logs get reported. */
const START_TIMEOUT_MS = 100_000;
const COMMAND_TIMEOUT_MS = 30_000;
/** The OSD's whole data capacity (memstore keeps objects in RAM); the suites store well under 100 MiB. */
const MEMSTORE_BYTES = 512 * 1024 * 1024;

export interface RgwHandle extends S3TestServer {
  readonly kind: 'rgw';
  /** Tail of every daemon log, for failure messages. */
  logs(): string;
}

export interface RgwOptions {
  /** Created at start (default 'walvault-test'). */
  bucket?: string;
}

function onPath(name: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    try {
      accessSync(path.join(dir || '.', name), fsConstants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** The Ceph binaries that are not on PATH (empty when RGW can start). */
export function rgwMissing(): string[] {
  return BINARIES.filter((b) => !onPath(b));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return `[global]
fsid = ${fsid}
mon host = v2:127.0.0.1:${monPort}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = false
ms cluster mode = crc secure
ms service mode = crc secure
ms client mode = crc secure
ms mon cluster mode = crc secure
ms mon service mode = crc secure
ms mon client mode = crc secure
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
log file = ${dir}/log/$name.log
mon data = ${dir}/mon-$id
osd data = ${dir}/osd$id
osd objectstore = memstore
memstore device bytes = ${MEMSTORE_BYTES}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
mon max pg per osd = 1000
# Each pool radosgw creates is an osdmap change; the monitor batches those for 1 s by default.
paxos propose interval = 0.05
paxos min wait = 0.01
# A killed radosgw (suspend) keeps its watches this long; metadata writes wait for them.
osd client watch timeout = 5

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw data = ${dir}/rgw
rgw thread pool size = 32
`;
}

/** Starts a private Ceph cluster with radosgw and one user with fixed keys; see the file comment. */
export async function startRgw(opts: RgwOptions = {}): Promise<RgwHandle> {
  const missing = rgwMissing();
  if (missing.length > 0) {
    throw new Error(`unable to start RGW: ${missing.join(', ')} not installed (${RGW_INSTALL})`);
  }
  const bucket = opts.bucket ?? 'walvault-test';
  const dir = await mkdtemp('/tmp/walvault-rgw-');
  const conf = path.join(dir, 'ceph.conf');
  const children = new Map<string, ChildProcess>();
  const spawnLog: string[] = [];

  const logs = (): string => {
    const out: string[] = [...spawnLog];
    try {
      for (const f of readdirSync(path.join(dir, 'log')).sort()) {
        const lines = readFileSync(path.join(dir, 'log', f), 'utf8')
          .trimEnd()
          .split('\n');
        out.push(`--- ${f} (last 40 lines)`, ...lines.slice(-40));
      }
    } catch {
      // no logs yet
    }
    return out.join('\n');
  };

  // A guard outside this process: when our end of its stdin closes (we died without stop()), it
  // kills the daemons listed in the pids file and removes the directory.
  const guard = spawn(
    'sh',
    ['-c', 'cat >/dev/null; [ -f "$1/pids" ] && kill -9 $(cat "$1/pids") 2>/dev/null; rm -rf "$1"', 'walvault-rgw-guard', dir],
    { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  guard.unref();
  (guard.stdin as unknown as { unref?: () => void }).unref?.();

  const run = (cmd: string, args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(cmd, ['-c', conf, ...args], { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });

  const daemon = async (name: string, cmd: string, args: string[]): Promise<void> => {
    const child = spawn(cmd, ['-f', '-c', conf, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.set(name, child);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => spawnLog.push(`${name}: ${d.trimEnd()}`));
    child.once('exit', (code, signal) => spawnLog.push(`${name} exited (code ${code}, signal ${signal})`));
    await writePids();
  };
  /** The guard's list: only live daemons, so it never kills a pid the system has handed on. */
  const writePids = (): Promise<void> => writeFile(path.join(dir, 'pids'), [...children.values()].map((c) => `${c.pid ?? ''}\n`).join(''));

  const stopDaemon = async (name: string, signal: NodeJS.Signals): Promise<void> => {
    const child = children.get(name);
    children.delete(name);
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      const escalate = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(escalate);
    }
    await writePids().catch(() => undefined);
  };

  const stopAll = async (): Promise<void> => {
    // A throwaway cluster has nothing worth flushing (on SIGTERM memstore would write its whole
    // store to disk): SIGKILL is immediate and needs no shutdown order.
    await Promise.all(['rgw', 'osd', 'mon'].map((name) => stopDaemon(name, 'SIGKILL')));
    // Everything is down: the guard has nothing left to do (and must not kill reused pids later).
    if (guard.exitCode === null && guard.signalCode === null) guard.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };

  let deadline = Date.now() + START_TIMEOUT_MS;
  const waitFor = async (what: string, check: () => Promise<boolean>): Promise<void> => {
    let last = '';
    for (;;) {
      for (const [name, child] of children) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited while waiting for ${what}`);
      }
      const ok = await check().catch((err: unknown) => {
        last = err instanceof Error ? err.message : String(err);
        return false;
      });
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
      await sleep(250);
    }
  };

  const rgwPort = await freePort();
  const endpoint = `http://127.0.0.1:${rgwPort}`;
  const accessKeyId = `WV${randomBytes(9).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString('base64url');

  const answers = (): Promise<boolean> =>
    new Promise((resolve) => {
      const req = request(endpoint, { method: 'GET', timeout: 2_000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });

  const startGateway = async (what: string): Promise<void> => {
    await daemon('rgw', 'radosgw', ['-n', 'client.rgw']);
    await waitFor(what, answers);
  };
  const t0 = Date.now();
  const mark = (what: string): void => {
    if (process.env['WALVAULT_RGW_DEBUG']) process.stderr.write(`rgw: ${what} after ${Date.now() - t0} ms\n`);
  };

  try {
    const fsid = randomUUID();
    const monPort = await freePort();
    await Promise.all(['run', 'log', 'mon-a', 'osd0', 'rgw'].map((d) => mkdir(path.join(dir, d))));
    await writeFile(conf, cephConf(dir, fsid, monPort, rgwPort));
    await new Promise<void>((resolve, reject) =>
      execFile('monmaptool', ['--create', '--add', 'a', `v2:127.0.0.1:${monPort}`, '--fsid', fsid, path.join(dir, 'monmap')], (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    await run('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap')]);
    await daemon('mon', 'ceph-mon', ['-i', 'a']);
    mark('mon spawned');

    const osdUuid = randomUUID();
    const osdId = (await run('ceph', ['--connect-timeout', '30', 'osd', 'new', osdUuid])).trim();
    if (osdId !== '0') throw new Error(`expected osd id 0, got '${osdId}'`);
    await run('ceph-osd', ['-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    await daemon('osd', 'ceph-osd', ['-i', '0']);
    mark('osd spawned');
    await waitFor('a healthy monitor with the OSD up', async () => {
      const status = JSON.parse(await run('ceph', ['--connect-timeout', '10', 'status', '-f', 'json'])) as {
        health?: { status?: string };
        osdmap?: { num_up_osds?: number; osdmap?: { num_up_osds?: number } };
      };
      const up = status.osdmap?.num_up_osds ?? status.osdmap?.osdmap?.num_up_osds;
      return up === 1 && status.health?.status !== 'HEALTH_ERR';
    });

    mark('osd up');
    await startGateway(`radosgw on ${endpoint}`);
    mark('rgw answers');
    await run('radosgw-admin', [
      'user',
      'create',
      '--uid',
      'walvault',
      '--display-name',
      'walvault tests',
      '--access-key',
      accessKeyId,
      '--secret-key',
      secretAccessKey,
    ]);
    mark('user created');
    await waitFor(`bucket '${bucket}'`, async () => {
      await createBucket({ endpoint, accessKeyId, secretAccessKey }, bucket);
      return true;
    });
  } catch (err) {
    const logText = logs();
    await stopAll();
    throw new Error(`unable to start RGW in '${dir}': ${(err as Error).message}\n${logText}`, { cause: err });
  }

  let stopped = false;
  return {
    kind: 'rgw',
    endpoint,
    port: rgwPort,
    bucket,
    accessKeyId,
    secretAccessKey,
    directory: dir,
    logs,
    createBucket: (name: string) => createBucket({ endpoint, accessKeyId, secretAccessKey }, name),
    suspend: () => stopDaemon('rgw', 'SIGKILL'),
    async resume() {
      if (stopped || children.has('rgw')) return;
      deadline = Date.now() + START_TIMEOUT_MS;
      try {
        await startGateway(`radosgw to come back on ${endpoint}`);
      } catch (err) {
        throw new Error(`unable to restart radosgw: ${(err as Error).message}\n${logs()}`, { cause: err });
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAll();
    },
  };
}
