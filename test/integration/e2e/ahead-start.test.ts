/**
 * wal-push starts the look-ahead uploader before it uploads its own file (issue 14): the uploader
 * boots while that upload runs instead of after it. Shown by a first call whose own file is refused:
 * the uploader it started still archives the next `.ready` segment, and leaves the refused one alone.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockHolderAlive } from '../../../src/common/pid-lock.js';
import { markerDir } from '../../../src/push/markers.js';
import { stateDirFor } from '../../../src/push/state-dir.js';
import { fixtureManifest, loadFixture } from '../../support/fixtures.js';
import { runCli } from '../../support/walvault.js';

const SEG7 = '000000010000000000000007';
const SEG8 = '000000010000000000000008';

async function until(what: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (what()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return what();
}

describe('wal-push starts the uploader first', () => {
  const root = mkdtempSync(join(tmpdir(), 'walvault-ahead-start-'));
  const archive = join(root, 'archive');
  const stateBase = join(root, 'state');
  // A stand-in data directory with two `.ready` segments, as the archiver sees it.
  const pgdata = join(root, 'pgdata');
  const env = {
    WALVAULT_CONFIG: '/dev/null',
    WALVAULT_ARCHIVE: `file://${archive}`,
    WALVAULT_STATE_DIR: stateBase,
    WALVAULT_PUSH_LOOKAHEAD: '8',
  };
  let lock: string | undefined;

  afterAll(async () => {
    // The uploader stops on its own after a few idle seconds.
    if (lock) await until(() => !lockHolderAlive(lock!), 30_000);
    rmSync(root, { recursive: true, force: true });
  });

  it('archives the next segment although the first call refuses its own file', async () => {
    mkdirSync(archive);
    mkdirSync(join(pgdata, 'global'), { recursive: true });
    mkdirSync(join(pgdata, 'pg_wal', 'archive_status'), { recursive: true });
    writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
    const control = Buffer.alloc(8192);
    control.writeBigUInt64LE(BigInt(fixtureManifest(15).systemId), 0);
    writeFileSync(join(pgdata, 'global', 'pg_control'), control);
    // Segment 7 is not WAL (its page headers are gone): wal-push refuses it.
    writeFileSync(join(pgdata, 'pg_wal', SEG7), Buffer.alloc(loadFixture(15, SEG7).length, 0x55));
    writeFileSync(join(pgdata, 'pg_wal', SEG8), loadFixture(15, SEG8));
    for (const seg of [SEG7, SEG8]) writeFileSync(join(pgdata, 'pg_wal', 'archive_status', `${seg}.ready`), '');
    const state = stateDirFor(pgdata, { WALVAULT_STATE_DIR: stateBase });
    lock = join(state, 'ahead.pid');

    const res = await runCli('wal-push', [`pg_wal/${SEG7}`], { env, cwd: pgdata });
    expect(res.code, res.stderr).not.toBe(0);
    expect(res.stderr).toMatch(/unable to read WAL file '000000010000000000000007': unknown WAL page magic/);
    const marker = join(markerDir(state), SEG8);
    expect(await until(() => existsSync(marker), 30_000), `no marker for ${SEG8}`).toBe(true);
    const stored = readdirSync(join(archive, 'wal', '00000001', '0000000100000000'));
    expect(stored.filter((n) => n.startsWith(`${SEG8}-`))).toHaveLength(1);
    // The file the call was uploading itself is not the uploader's: it tried nothing with it.
    expect(existsSync(join(markerDir(state), SEG7))).toBe(false);
    expect(stored.filter((n) => n.startsWith(SEG7))).toEqual([]);
  });
});
