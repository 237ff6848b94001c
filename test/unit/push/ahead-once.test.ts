/**
 * Every segment is uploaded once. The wal-push launcher answers from the look-ahead uploader's marker
 * and removes it; PostgreSQL renames `.ready` to `.done` only after archive_command has exited. In
 * that window the uploader (the daemon polls every 100 ms) sees a `.ready` file without a marker and
 * pushes the same segment a second time.
 * The uploader remembers what it archived while the file is still `.ready`.
 */
import { rename, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { sleep } from '../../../src/common/retry.js';
import { consumeMarker } from '../../../src/push/markers.js';
import { runAhead } from '../../../src/push/ahead.js';
import { makeCtx, newStorage, removeTempDirs, tempDir, writeFixture } from '../archive/support.js';

afterAll(removeTempDirs);

const SEG = '000000010000000000000007';

it('archives a segment once, even while its marker is consumed before PostgreSQL marks it .done', async () => {
  const storage = await newStorage('posix');
  const walDir = await tempDir('pg_wal');
  await mkdir(path.join(walDir, 'archive_status'));
  const segPath = await writeFixture(walDir, 15, SEG);
  const ready = path.join(walDir, 'archive_status', `${SEG}.ready`);
  await writeFile(ready, '');
  const stateDir = await tempDir('state');
  const archived: string[] = [];
  const archiver: Promise<void>[] = [];
  let consumed = false;
  const controller = new AbortController();
  const run = runAhead(
    { ...makeCtx(storage), signal: controller.signal },
    {
      walDir,
      stateDir,
      concurrency: 2,
      maxFiles: Number.POSITIVE_INFINITY,
      idleMs: Number.POSITIVE_INFINITY,
      pollMs: 20,
      onArchived: (name, result) => {
        archived.push(`${name} ${result.status}`);
        if (archived.length > 1) return;
        // PostgreSQL's archiver, once: the launcher takes the marker and exits 0, then the server renames.
        archiver.push(
          (async () => {
            consumed = await consumeMarker(stateDir, name, segPath);
            await sleep(300);
            await rename(ready, path.join(walDir, 'archive_status', `${SEG}.done`));
          })(),
        );
      },
    },
  );
  await sleep(1500);
  controller.abort();
  await run;
  await Promise.all(archiver);
  expect(consumed).toBe(true);
  expect(archived).toEqual([`${SEG} uploaded`]);
});
