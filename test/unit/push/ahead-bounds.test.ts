/**
 * The detached uploader is not bounded by a count of uploads (each new run cost a Node start and a
 * cold push) but by how far it runs ahead of PostgreSQL's archiver (`push-lookahead`), and it ends
 * when a daemon asks for the lock.
 */
import { writeFile, mkdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { consumeMarker } from '../../../src/push/markers.js';
import { runAhead } from '../../../src/push/ahead.js';
import { makeCtx, newStorage, removeTempDirs, tempDir, writeFixture } from '../archive/support.js';

afterAll(removeTempDirs);

const SEGS = ['000000010000000000000007', '000000010000000000000008'];

async function walDirWith(names: readonly string[]): Promise<{ walDir: string; paths: string[] }> {
  const walDir = await tempDir('pg_wal');
  await mkdir(path.join(walDir, 'archive_status'));
  const paths: string[] = [];
  for (const n of names) {
    paths.push(await writeFixture(walDir, 15, n));
    await writeFile(path.join(walDir, 'archive_status', `${n}.ready`), '');
  }
  return { walDir, paths };
}

it('stays at most maxAhead files ahead of the archiver, and goes on once the archiver catches up', async () => {
  const storage = await newStorage('posix');
  const { walDir, paths } = await walDirWith(SEGS);
  const stateDir = await tempDir('state');
  const archived: string[] = [];
  const run = runAhead(makeCtx(storage), {
    walDir,
    stateDir,
    concurrency: 2,
    maxFiles: Number.POSITIVE_INFINITY,
    maxAhead: 1,
    idleMs: 1500,
    pollMs: 20,
    onArchived: (name) => {
      archived.push(name);
      if (archived.length > 1) return;
      // PostgreSQL's archiver, a little later: the launcher consumes the marker, the server renames.
      setTimeout(() => {
        void (async () => {
          expect(archived).toEqual([SEGS[0]]);
          await consumeMarker(stateDir, name, paths[0]!);
          await rename(path.join(walDir, 'archive_status', `${name}.ready`), path.join(walDir, 'archive_status', `${name}.done`));
        })();
      }, 500);
    },
  });
  const summary = await run;
  expect(archived).toEqual(SEGS);
  expect(summary).toEqual({ archived: 2, failed: 0 });
});

it('ends at once when a stop is requested (a daemon waiting for the lock), uploading nothing more', async () => {
  const storage = await newStorage('posix');
  const { walDir } = await walDirWith(SEGS);
  const stateDir = await tempDir('state');
  const archived: string[] = [];
  const summary = await runAhead(makeCtx(storage), {
    walDir,
    stateDir,
    concurrency: 1,
    maxFiles: Number.POSITIVE_INFINITY,
    idleMs: Number.POSITIVE_INFINITY,
    pollMs: 20,
    stopRequested: () => true,
    onArchived: (name) => archived.push(name),
  });
  expect(archived).toEqual([]);
  expect(summary).toEqual({ archived: 0, failed: 0 });
});
