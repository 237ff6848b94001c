/**
 * A finished segment straight from a live server's pg_wal, inspected by the library and by
 * `walvault segment inspect`: the system identifier equals the server's own (and pg_controldata's).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectSegment } from '../../../src/segment/inspect.js';
import { formatLsn } from '../../../src/segment/lsn.js';
import { SegmentName } from '../../../src/segment/names.js';
import { supportedMajors, useCluster } from '../../support/cluster.js';
import { runCli } from '../../support/walvault.js';

describe.each(supportedMajors())('PostgreSQL %i: inspecting a segment from pg_wal', (major) => {
  const handle = useCluster({ major, walSegSizeMb: 1 });

  it('reports the server identity, timeline and LSN of a switched segment', async () => {
    const c = handle.cluster;
    await c.generateWal({ bytes: 200_000 });
    const finished = await c.switchWal();
    const path = join(c.walDir(), finished);
    const info = inspectSegment(readFileSync(path), { expectedName: finished });
    expect(info.systemId).toBe(await c.systemIdentifier());
    expect(info.pgMajor).toBe(major);
    expect(info.timeline).toBe(1);
    expect(formatLsn(info.startLsn)).toBe(formatLsn(SegmentName.parse(finished, 1024 * 1024).startLsn));
    expect(info.end === 'zeros' || info.end === 'full').toBe(true);

    const cli = await runCli('walvault', ['segment', 'inspect', path]);
    expect(cli.code, cli.stderr).toBe(0);
    const shown = /system identifier:\s+(\d+)/.exec(cli.stdout)?.[1];
    expect(shown).toBe(info.systemId);
    if (c.binaries.hasClientTools) expect(shown).toBe(await c.controlDataSystemId());
  });
});
