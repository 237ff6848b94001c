import { describe, expect, it } from 'vitest';
import type { ArchiveContext } from '../../../src/archive/context.js';
import { readIdentity } from '../../../src/archive/identity.js';
import { checkArchiveFor, type ServerIdentity } from '../../../src/backup/push-server.js';
import { ArchiveMismatchError } from '../../../src/common/errors.js';
import { silentLogger } from '../../../src/common/log.js';
import { MemoryStorage } from '../../../src/storage/memory.js';

const server: ServerIdentity = { systemId: '7714512724302187073', timeline: 1, walSegSize: 16777216, pgVersionNum: 150018, pgMajor: 15 };
const ctxOf = (): ArchiveContext => ({ storage: new MemoryStorage(), compression: { name: 'zstd', level: 1 }, log: silentLogger() });

describe('the archive a backup goes into', () => {
  it('takes the identity of the server when the archive has none', async () => {
    const ctx = ctxOf();
    const id = await checkArchiveFor(ctx, server);
    expect([id.systemId, id.pgMajor, id.walSegSize]).toEqual([server.systemId, 15, 16777216]);
    expect(await readIdentity(ctx.storage)).toMatchObject({ systemId: server.systemId, pgMajor: 15, walSegSize: 16777216 });
    // The same server again: accepted.
    await checkArchiveFor({ ...ctx, identity: undefined }, server);
  });

  it('refuses another cluster, segment size or major, naming each difference', async () => {
    const ctx = ctxOf();
    await checkArchiveFor(ctx, server);
    const fresh = { ...ctx, identity: undefined };
    const err = await checkArchiveFor(fresh, { ...server, systemId: '1', walSegSize: 1048576, pgMajor: 17, pgVersionNum: 170002 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ArchiveMismatchError);
    expect((err as Error).message).toBe(
      'unable to back up into this archive: the server is database system 1, the archive belongs to 7714512724302187073; ' +
        "the server's wal_segment_size is 1048576, the archive's 16777216; the server is PostgreSQL 17, the archive holds PostgreSQL 15 WAL",
    );
  });
});
