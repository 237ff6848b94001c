/**
 * `walvault stream` against an archive that holds WAL (of another cluster) but lost its identity
 * record: the agent refuses at connect (exit 4, one error line naming `walvault identity-rebuild`)
 * and writes nothing, instead of writing a new identity naming the server it streams from.
 */
import { chownSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgCluster, useClusterPool } from '../../support/cluster.js';
import { loadFixture } from '../../support/fixtures.js';
import { runCli } from '../../support/walvault.js';
import { pgUser } from '../../../tools/pgcluster/user.js';
import { startAgent, useWorkDir } from './agent.js';

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p, `${rel}${name}/`);
      else out[`${rel}${name}`] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir, '');
  return out;
}

function chownTree(dir: string): void {
  const user = pgUser();
  if (user.isCurrent) return;
  chownSync(dir, user.uid, user.gid);
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) chownTree(p);
    else chownSync(p, user.uid, user.gid);
  }
}

describe('walvault stream into an archive that lost its identity', () => {
  const pool = useClusterPool();
  const w = useWorkDir('walvault-stream-idlost-');
  let primary: PgCluster;

  beforeAll(async () => {
    primary = pool.track(await PgCluster.create({ major: 15, walSegSizeMb: 1 }));
    await primary.start();
  });
  afterAll(async () => {
    await pool.destroyAll();
  });

  it('refuses at connect with exit 4 and writes nothing', async () => {
    // Another cluster's segment (the PostgreSQL 15 fixture), archived normally, then the identity lost.
    const input = join(w.root, '000000010000000000000007');
    writeFileSync(input, loadFixture(15, '000000010000000000000007'));
    const pushed = await runCli('wal-push', [input], { env: { WALVAULT_ARCHIVE: w.archiveUrl, WALVAULT_NO_FASTPATH: '1' } });
    expect(pushed.code, pushed.stderr).toBe(0);
    unlinkSync(join(w.archiveDir, 'archive.info'));
    unlinkSync(join(w.archiveDir, 'archive.info.copy'));
    chownTree(w.archiveDir);
    const before = snapshot(w.archiveDir);

    const agent = startAgent({ cluster: primary, archive: w.archiveUrl, spoolDir: w.spoolDir });
    const { code } = await agent.exited;
    expect(code, agent.tail()).toBe(4);
    const last = agent.stderrText.trimEnd().split('\n').at(-1)!;
    expect(last).toMatch(/^walvault stream: unable to stream into this archive: archive 'file:\/\/.*' holds WAL \('wal\//);
    expect(last).toContain("run 'walvault identity-rebuild'");
    expect(snapshot(w.archiveDir)).toEqual(before);
  });
});
