/**
 * The look-ahead uploader must come back after a storage outage: a file whose upload failed is
 * tried again after a backoff, not skipped for the rest of the daemon's life.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../src/common/errors.js';
import { runAhead } from '../../../src/push/ahead.js';
import { hasMarker, markerDir } from '../../../src/push/markers.js';
import { MemoryStorage } from '../../../src/storage/memory.js';
import type { PutBody, PutOptions } from '../../../src/storage/types.js';
import { fixtureManifest } from '../../support/fixtures.js';
import { makeCtx, removeTempDirs, tempDir, writeFixture } from '../archive/support.js';

/** The real memory driver, with writes refused while `down` (a storage outage). */
class OutageStorage extends MemoryStorage {
  down = true;
  refused = 0;
  override async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<void> {
    if (this.down) {
      this.refused++;
      throw new StorageError(`unable to write object '${key}' to ${this.description}: storage is down`, { retryable: true });
    }
    return super.put(key, body, opts);
  }
}

afterAll(removeTempDirs);

describe('runAhead after a storage outage', () => {
  it('archives a file whose first upload failed once the storage is back', async () => {
    const major = 15;
    const segment = fixtureManifest(major).files.find((f) => f.kind === 'segment')!.name;
    const pgdata = await tempDir('ahead-pgdata');
    const walDir = path.join(pgdata, 'pg_wal');
    const stateDir = path.join(pgdata, 'walvault');
    await mkdir(path.join(walDir, 'archive_status'), { recursive: true });
    await writeFixture(walDir, major, segment);
    await writeFile(path.join(walDir, 'archive_status', `${segment}.ready`), '');

    const storage = new OutageStorage();
    const stop = new AbortController();
    // A bound so that a regression fails the test instead of hanging it; not a timing assertion.
    const guard = setTimeout(() => stop.abort(), 20_000);
    const errors: string[] = [];
    const archived: string[] = [];
    const notes: boolean[] = [];
    const ctx = { ...makeCtx(storage), signal: stop.signal };
    try {
      await runAhead(ctx, {
        walDir,
        stateDir,
        concurrency: 1,
        maxFiles: Number.POSITIVE_INFINITY,
        idleMs: Number.POSITIVE_INFINITY,
        pollMs: 20,
        retry: { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 200, factor: 2 },
        onError: (name) => {
          errors.push(name);
          // The launcher stops waiting for a marker once it sees this note (bin/wal-push).
          notes.push(existsSync(path.join(markerDir(stateDir), `${name}.failed`)));
          if (errors.length === 2) storage.down = false; // the outage ends after two failed attempts
        },
        onArchived: (name) => {
          archived.push(name);
          stop.abort();
        },
      });
    } finally {
      clearTimeout(guard);
    }
    expect(errors).toEqual([segment, segment]);
    expect(storage.refused).toBeGreaterThanOrEqual(2);
    expect(archived).toEqual([segment]);
    expect(await hasMarker(stateDir, segment)).toBe(true);
    expect(notes).toEqual([true, true]);
    expect(existsSync(path.join(markerDir(stateDir), `${segment}.failed`))).toBe(false);
  });
});
