/**
 * The S3 server (s3rver) killed with SIGKILL while walvault talks to it, and started again on the
 * same port and data a moment later. The fault proxy sits in front only to see when the upload or
 * download request is on the wire, so the kill lands in the middle of it.
 *   - mid-upload: wal-push exits 0 only if the object is really there and whole (checked by a fetch
 *     after the restart), otherwise 3; PostgreSQL's retry then exits 0 and the bytes restore;
 *   - mid-download: wal-fetch never exits 1 for a file the archive holds (0 with the right bytes,
 *     or 128/3: not available now), and the retry restores the bytes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, REPO, runCli, writeConfig } from '../support/walvault.js';
import { startS3rver, type S3rverHandle } from '../support/s3server.js';
import { FaultProxy } from '../support/faultproxy.js';
import { fixturesOfKind, loadFixture } from '../support/fixtures.js';
import { faultCount, figures, seededRandom, sleep } from '../support/faults.js';

const MAJOR = 15;
const ROUNDS = faultCount(3);

interface Tally {
  kills: number;
  /** Kills that found the request on the wire. */
  midRequest: number;
  calls: number;
  lost: string[];
  wrong: string[];
}

describe('the S3 server killed mid-upload and mid-download', { timeout: 300_000 }, () => {
  const rnd = seededRandom('s3-kill');
  const up: Tally = { kills: 0, midRequest: 0, calls: 0, lost: [], wrong: [] };
  const down: Tally = { kills: 0, midRequest: 0, calls: 0, lost: [], wrong: [] };
  const segments = fixturesOfKind(MAJOR, 'segment');
  let root: string;
  let s3: S3rverHandle;
  let proxy: FaultProxy;
  let env: Record<string, string>;
  const paths = new Map<string, string>();

  /** Points the config at a fresh prefix of the bucket (each upload round needs names not yet archived). */
  function useArchive(prefix: string): void {
    writeConfig(join(root, 'walvault.conf'), {
      archive: `s3://${s3.bucket}/${prefix}`,
      's3-endpoint': proxy.endpoint,
      's3-force-path-style': true,
      's3-checksums': 'when_required',
      's3-max-attempts': 4,
      // Larger objects: the request stays on the wire longer.
      compression: 'none',
    });
  }

  beforeAll(async () => {
    root = mkdtempSync('/tmp/walvault-faults-s3-');
    s3 = await startS3rver({ bucket: 'wal' });
    proxy = await FaultProxy.start(s3.endpoint);
    const configFile = join(root, 'walvault.conf');
    useArchive('download');
    env = {
      WALVAULT_CONFIG: configFile,
      WALVAULT_NO_FASTPATH: '1',
      WALVAULT_FETCH_PREFETCH: '0',
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    mkdirSync(join(root, 'src'));
    for (const s of segments) {
      const p = join(root, 'src', s.name);
      writeFileSync(p, loadFixture(MAJOR, s.name));
      paths.set(s.name, p);
    }
  });

  afterAll(async () => {
    const line = (label: string, t: Tally, calls: string): void => {
      figures(label, {
        'server kills': t.kills,
        'of them mid-request': t.midRequest,
        [calls]: t.calls,
        'WAL lost': t.lost.length,
        'wrong exit codes': t.wrong.length,
      });
    };
    line('s3rver SIGKILL mid-upload', up, 'wal-push calls checked');
    line('s3rver SIGKILL mid-download', down, 'wal-fetch calls checked');
    await proxy?.close();
    await s3?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** Runs a launcher; kills s3rver once a request matching `method` to a wal/ key is on the wire, restarts it later. */
  async function withServerKill(t: Tally, name: 'wal-push' | 'wal-fetch', args: string[], method: string): Promise<number | null> {
    proxy.clear();
    const child = spawn(bin(name), args, { cwd: REPO, env: { ...process.env, WALVAULT_NODE: process.execPath, ...env }, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let done = false;
    void exited.then(() => (done = true));
    const onWire = (): boolean => proxy.requests.some((r) => r.method === method && /\/wal\//.test(r.url));
    while (!done && !onWire()) await sleep(2);
    if (!done) {
      await sleep(rnd.int(0, 15));
      const mid = !done;
      await s3.suspend();
      t.kills++;
      if (mid) t.midRequest++;
      await sleep(rnd.int(100, 1500));
      await s3.resume();
    }
    const code = await exited;
    t.calls++;
    return code;
  }

  async function fetchBytes(name: string): Promise<{ code: number; bytes?: Buffer }> {
    const out = join(root, `out-${name}`);
    rmSync(out, { force: true });
    const res = await runCli('wal-fetch', [name, out], { env });
    return { code: res.code, ...(res.code === 0 && existsSync(out) ? { bytes: readFileSync(out) } : {}) };
  }

  it('mid-upload: wal-push exits 0 only for a whole object, the retry succeeds, nothing is lost', async () => {
    for (let i = 0; i < ROUNDS; i++) {
      useArchive(`upload-${i}`);
      const pick = rnd.int(0, segments.length - 1);
      const seg = segments[pick]!;
      const path = paths.get(seg.name)!;
      const original = readFileSync(path);
      // The archive's identity record first, without a fault: s3rver writes objects in place and not
      // durably, and a kill right after it acknowledged archive.info has left that record torn, which
      // refuses every later push (see the closing note of 2026-12-01; an open product question).
      const first = segments[(pick + 1) % segments.length]!;
      const established = await runCli('wal-push', [paths.get(first.name)!], { env });
      if (established.code !== 0)
        up.wrong.push(`round ${i}: the fault-free first push exited ${established.code}: ${established.stderr.slice(-300)}`);
      const code = await withServerKill(up, 'wal-push', [path], 'PUT');
      if (code === 0) {
        const f = await fetchBytes(seg.name);
        up.calls++;
        if (!f.bytes?.equals(original)) up.wrong.push(`round ${i}: wal-push exited 0 but ${seg.name} does not restore (fetch ${f.code})`);
      } else if (code !== 3) {
        up.wrong.push(`round ${i}: wal-push exited ${code}`);
      }
      // PostgreSQL's retry (or a repeat of an archived file): must succeed and the bytes must restore.
      const again = await runCli('wal-push', [path], { env });
      up.calls++;
      if (again.code !== 0) up.wrong.push(`round ${i}: the retry of ${seg.name} exited ${again.code}: ${again.stderr.slice(-300)}`);
      const f = await fetchBytes(seg.name);
      up.calls++;
      if (!f.bytes?.equals(original)) up.lost.push(`round ${i}: ${seg.name} does not restore after the retry (fetch ${f.code})`);
    }
    expect(up.kills).toBeGreaterThan(0);
    expect(up.wrong).toEqual([]);
    expect(up.lost).toEqual([]);
  });

  it('mid-download: wal-fetch never answers 1 for an archived file, and the retry restores the bytes', async () => {
    useArchive('download');
    for (const s of segments) {
      const res = await runCli('wal-push', [paths.get(s.name)!], { env });
      expect(res.code, res.stderr).toBe(0);
    }
    for (let i = 0; i < ROUNDS; i++) {
      const seg = segments[rnd.int(0, segments.length - 1)]!;
      const original = readFileSync(paths.get(seg.name)!);
      const out = join(root, `dl-${i}`);
      const code = await withServerKill(down, 'wal-fetch', [seg.name, out], 'GET');
      if (code === 0) {
        if (!readFileSync(out).equals(original)) down.lost.push(`round ${i}: ${seg.name} restored with wrong bytes`);
      } else if (code !== 128 && code !== 3) {
        down.wrong.push(`round ${i}: wal-fetch of an archived ${seg.name} exited ${code}`);
      }
      if (code !== 0 && existsSync(out) && !readFileSync(out).equals(original)) down.lost.push(`round ${i}: torn ${seg.name} at %p`);
      const f = await fetchBytes(seg.name);
      down.calls++;
      if (f.code !== 0) down.wrong.push(`round ${i}: the retry exited ${f.code}`);
      else if (!f.bytes!.equals(original)) down.lost.push(`round ${i}: ${seg.name} differs after the retry`);
    }
    expect(down.kills).toBeGreaterThan(0);
    expect(down.wrong).toEqual([]);
    expect(down.lost).toEqual([]);
  });
});
