/**
 * `walvault stream` with a spool file that the archive refuses (it already holds different content
 * under that name): the agent stops with the refusal's exit code (4) and keeps the file in the
 * spool, instead of retrying a refusal forever while the server holds WAL for it.
 */
import { chownSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, useClusterPool } from '../../support/cluster.js';
import { pgUser } from '../../../tools/pgcluster/user.js';
import { openArchiveReader, segmentsOf, startAgent, useWorkDir, waitFor, type Agent } from './agent.js';

const MB = 1024 * 1024;

describe('walvault stream with a refused upload', () => {
  const pool = useClusterPool();
  const w = useWorkDir('walvault-stream-refusal-');
  let primary: PgCluster;

  beforeAll(async () => {
    primary = pool.track(await PgCluster.create({ major: 15, walSegSizeMb: 1 }));
    await primary.start();
  });
  afterAll(async () => {
    await pool.destroyAll();
  });

  it('stops with exit 4 and keeps the file in the spool', async () => {
    const first = startAgent({ cluster: primary, archive: w.archiveUrl, spoolDir: w.spoolDir });
    const reader = await openArchiveReader(w.archiveUrl, MB);
    let second: Agent | undefined;
    try {
      await first.waitForLog((l) => l.msg === 'streaming', 30_000, "'streaming'");
      await primary.generateWal({ bytes: 1.5 * MB });
      await primary.switchWal();
      const seg = await waitFor(async () => segmentsOf(await reader.catalog())[0], 60_000, 'an archived segment');
      expect(await first.stop()).toBe(0);

      // A leftover spool file under that name with other bytes (one byte flipped inside a record).
      const other = Buffer.from(await reader.read(seg.fileName));
      other[100_000] = other[100_000]! ^ 0xff;
      const leftover = join(w.spoolDir, seg.fileName);
      writeFileSync(leftover, other);
      const user = pgUser();
      if (!user.isCurrent) chownSync(leftover, user.uid, user.gid);

      second = startAgent({ cluster: primary, archive: w.archiveUrl, spoolDir: w.spoolDir });
      const { code } = await second.exited;
      expect(code, second.tail()).toBe(4);
      expect(second.tail()).toContain(seg.fileName);
      expect(existsSync(leftover)).toBe(true);
      // Refused, not retried: one failed upload of that file.
      expect(second.logs.filter((l) => l.msg === 'upload failed; retrying').length).toBe(0);
    } finally {
      // Also when the agent never exits on its own (the failure this test is about).
      await second?.kill9();
      await first.stop().catch(() => undefined);
      await reader.close();
    }
  });
});
