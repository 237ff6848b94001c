/**
 * N wal-push processes pushing the same real segment at the same moment (PostgreSQL re-running
 * archive_command while an earlier call, a look-ahead uploader and the streaming agent still push
 * the same file): every one exits 0, the archive ends up with exactly one object for the segment,
 * nothing under errors/, and it restores byte-identical. Posix and S3, on a fresh archive (the
 * identity record is created concurrently too) and on one that already has it.
 * (Concurrent pushes of *different* content are covered with the dedupe rule's own tests.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, REPO, writeConfig } from '../support/walvault.js';
import { startS3rver, type S3rverHandle } from '../support/s3server.js';
import { fixturesOfKind, loadFixture } from '../support/fixtures.js';
import { faultCount, figures, seededRandom } from '../support/faults.js';
import { openArchiveReader } from '../integration/stream/agent.js';

const N = 6;
const ROUNDS = faultCount(2);
const MAJOR = 15;

function pushAll(path: string, env: Record<string, string>): Promise<Array<{ code: number | null; stderr: string }>> {
  return Promise.all(
    Array.from(
      { length: N },
      () =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(bin('wal-push'), [path], {
            cwd: REPO,
            env: { ...process.env, WALVAULT_NODE: process.execPath, WALVAULT_NO_FASTPATH: '1', ...env },
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let stderr = '';
          child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
          child.once('exit', (code) => resolve({ code, stderr }));
        }),
    ),
  );
}

describe('concurrent wal-push of equal content', { timeout: 180_000 }, () => {
  const rnd = seededRandom('concurrent-push');
  const segments = fixturesOfKind(MAJOR, 'segment');
  const totals = { races: 0, pushes: 0, objects: 0, lost: 0, wrong: [] as string[] };
  let root: string;
  let s3: S3rverHandle;

  beforeAll(async () => {
    root = mkdtempSync('/tmp/walvault-faults-concurrent-');
    s3 = await startS3rver({ bucket: 'wal' });
  });

  afterAll(async () => {
    figures('concurrent equal push', {
      [`races of ${N} processes`]: totals.races,
      'pushes checked': totals.pushes,
      'objects stored (one per race)': totals.objects,
      'WAL lost': totals.lost,
      'wrong exit codes': totals.wrong.length,
    });
    await s3?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it.each(['posix', 's3'] as const)('%s: all exit 0, one object, byte-identical', async (kind) => {
    for (let round = 0; round < ROUNDS; round++) {
      // Round 0 on a fresh archive (identity record created by the racers), later rounds reuse it.
      const archive = kind === 'posix' ? `file://${join(root, 'posix-archive')}` : `s3://${s3.bucket}/concurrent`;
      if (kind === 'posix') mkdirSync(join(root, 'posix-archive'), { recursive: true });
      const configFile = writeConfig(join(root, `${kind}.conf`), {
        archive,
        ...(kind === 's3'
          ? { 's3-endpoint': s3.endpoint, 's3-force-path-style': true, 's3-checksums': 'when_required', 's3-max-attempts': 3 }
          : {}),
      });
      const env: Record<string, string> = {
        WALVAULT_CONFIG: configFile,
        ...(kind === 's3' ? { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' } : {}),
      };
      const seg = segments[(rnd.int(0, segments.length - 1) + round) % segments.length]!;
      const bytes = loadFixture(MAJOR, seg.name);
      const dir = join(root, `${kind}-${round}`);
      mkdirSync(dir, { recursive: true });
      const path = join(dir, seg.name);
      writeFileSync(path, bytes);

      const results = await pushAll(path, env);
      totals.races++;
      totals.pushes += results.length;
      for (const r of results) if (r.code !== 0) totals.wrong.push(`${kind} ${seg.name}: exit ${r.code}: ${r.stderr.slice(-300)}`);

      const reader = await openArchiveReader(archive, bytes.length, kind === 's3' ? { endpoint: s3.endpoint } : undefined);
      try {
        // Every stored object of this name, read from the storage listing itself.
        const versions: string[] = [];
        for await (const o of reader.ctx.storage.list('wal/')) if (o.key.split('/').pop()!.startsWith(`${seg.name}-`)) versions.push(o.key);
        totals.objects += versions.length;
        expect(versions.length, `objects for ${seg.name}`).toBe(1);
        expect(await reader.errorKeys()).toEqual([]);
        const restored = await reader.read(seg.name).catch(() => undefined);
        if (!restored?.equals(bytes)) totals.lost++;
      } finally {
        await reader.close();
      }
    }
    expect(totals.wrong).toEqual([]);
    expect(totals.lost).toBe(0);
  });
});
