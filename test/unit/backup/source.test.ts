import { describe, expect, it } from 'vitest';
import { BackupStreamReader } from '../../../src/backup/source.js';
import type { BackupEnd, BackupEntrySink, BackupStart, EntryHeader } from '../../../src/backup/entry-sink.js';
import type { BaseBackupEvent } from '../../../src/postgres/replication/connection.js';
import { ReplicationError } from '../../../src/common/errors.js';
import { TERMINATOR, file, header } from '../../support/tar-build.js';

/** Records every sink call as text, in order. */
class RecordingSink implements BackupEntrySink {
  calls: string[] = [];
  begin(s: BackupStart): Promise<void> {
    this.calls.push(
      `begin ${s.startLsn} ${s.startTimeline} ${s.tablespaces.map((t) => `${t.oid}:${t.location}:${t.sizeBytes}`).join(',')}`,
    );
    return Promise.resolve();
  }
  entry(h: EntryHeader): Promise<void> {
    this.calls.push(`entry ${h.tablespace} ${h.type} ${h.path} ${h.size} ${h.target} ${h.mode.toString(8)}`);
    return Promise.resolve();
  }
  data(chunk: Buffer): Promise<void> {
    this.calls.push(`data ${chunk.toString('latin1')}`);
    return Promise.resolve();
  }
  entryEnd(): Promise<void> {
    this.calls.push('entryEnd');
    return Promise.resolve();
  }
  manifest(chunk: Buffer): Promise<void> {
    this.calls.push(`manifest ${chunk.toString('latin1')}`);
    return Promise.resolve();
  }
  progress(done: number): void {
    this.calls.push(`progress ${done}`);
  }
  end(e: BackupEnd): Promise<void> {
    this.calls.push(`end ${e.endLsn}`);
    return Promise.resolve();
  }
}

const startRs: BaseBackupEvent = { kind: 'result', result: { columns: ['recptr', 'tli'], rows: [['0/2000028', '1']] } };
const endRs: BaseBackupEvent = { kind: 'result', result: { columns: ['recptr', 'tli'], rows: [['0/2000100', '1']] } };
const spcRs = (rows: Array<Array<string | null>>): BaseBackupEvent => ({
  kind: 'result',
  result: { columns: ['spcoid', 'spclocation', 'size'], rows },
});
const copyStart: BaseBackupEvent = { kind: 'copyStart' };
const copyEnd: BaseBackupEvent = { kind: 'copyEnd' };
const raw = (b: Buffer): BaseBackupEvent => ({ kind: 'copyData', chunk: b, first: true, last: true });
const typed = (type: string, payload: Buffer = Buffer.alloc(0)): BaseBackupEvent =>
  raw(Buffer.concat([Buffer.from(type, 'latin1'), payload]));
const archive = (name: string, path = ''): BaseBackupEvent => typed('n', Buffer.from(`${name}\0${path}\0`, 'latin1'));
const progress = (n: number): BaseBackupEvent => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return typed('p', b);
};

const baseTar = Buffer.concat([
  file('backup_label', Buffer.from('L')),
  header({ name: './pg_wal/', type: '5', mode: 0o700 }),
  header({ name: 'pg_tblspc/16385/', type: '2', mode: 0o777, link: '/srv/ts' }),
  file('global/pg_control', Buffer.from('C')),
]);
const tsTar = Buffer.concat([
  header({ name: 'PG_15_202209061/', type: '5', mode: 0o700 }),
  file('PG_15_202209061/5/16390', Buffer.from('T')),
]);

async function run(typedStream: boolean, events: BaseBackupEvent[]): Promise<{ sink: RecordingSink; reader: BackupStreamReader }> {
  const sink = new RecordingSink();
  const reader = new BackupStreamReader(sink, 'lbl', typedStream);
  for (const ev of events) await reader.handle(ev);
  return { sink, reader };
}

async function failure(typedStream: boolean, events: BaseBackupEvent[], finish = false): Promise<string> {
  try {
    const { reader } = await run(typedStream, events);
    if (finish) reader.finish();
  } catch (err) {
    if (err instanceof Error) return err.message;
    throw err;
  }
  throw new Error('expected a failure');
}

const expectedCalls = [
  'begin 33554472 1 16385:/srv/ts:2048,null:null:10240',
  'entry 16385 dir PG_15_202209061 0 null 700',
  'entry 16385 file PG_15_202209061/5/16390 1 null 600',
  'data T',
  'entryEnd',
  'entry null file backup_label 1 null 600',
  'data L',
  'entryEnd',
  'entry null dir pg_wal 0 null 700',
  'entry null link pg_tblspc/16385 0 /srv/ts 777',
  'entry null file global/pg_control 1 null 600',
  'data C',
  'entryEnd',
];

describe('BackupStreamReader, PostgreSQL 15+ typed stream', () => {
  const stream: BaseBackupEvent[] = [
    startRs,
    spcRs([
      ['16385', '/srv/ts', '2'],
      [null, null, '10'],
    ]),
    copyStart,
    archive('16385.tar', '/srv/ts'),
    typed('d', tsTar),
    typed('d', TERMINATOR),
    progress(1536),
    archive('base.tar'),
    typed('d', baseTar.subarray(0, 700)),
    typed('d', Buffer.concat([baseTar.subarray(700), TERMINATOR])),
    progress(4096),
    typed('m'),
    typed('d', Buffer.from('{"a":')),
    typed('d', Buffer.from('1}')),
    copyEnd,
    endRs,
  ];

  it('maps archives to tablespaces, strips ./ and trailing slashes, delivers progress and manifest', async () => {
    const { sink, reader } = await run(true, stream);
    const progressAt = sink.calls.indexOf('progress 1536');
    expect(sink.calls.filter((c) => !c.startsWith('progress'))).toEqual([...expectedCalls, 'manifest {"a":', 'manifest 1}']);
    expect(progressAt).toBe(5);
    expect(reader.finish()).toEqual({ endLsn: 0x2000100n, endTimeline: 1 });
    expect(reader.manifestBytes).toBe(7);
  });

  it('takes data messages in pieces (a message split by socket reads) like whole ones', async () => {
    // Every 'd' message cut into pieces of 3 bytes: the first piece carries the type byte.
    const split = stream.flatMap((ev): BaseBackupEvent[] => {
      if (ev.kind !== 'copyData' || ev.chunk[0] !== 0x64 || ev.chunk.length < 4) return [ev];
      const out: BaseBackupEvent[] = [];
      for (let off = 0; off < ev.chunk.length; off += 3) {
        const chunk = ev.chunk.subarray(off, off + 3);
        out.push({ kind: 'copyData', chunk, first: off === 0, last: off + 3 >= ev.chunk.length });
      }
      return out;
    });
    const { sink } = await run(true, split);
    const manifest = sink.calls.filter((c) => c.startsWith('manifest')).map((c) => c.slice('manifest '.length));
    expect(manifest.join('')).toBe('{"a":1}');
    const data = sink.calls.filter((c) => c.startsWith('data')).map((c) => c.slice('data '.length));
    expect(data.join('')).toBe('TLC');
    expect(sink.calls.filter((c) => !c.startsWith('progress') && !c.startsWith('data') && !c.startsWith('manifest'))).toEqual(
      expectedCalls.filter((c) => !c.startsWith('data')),
    );
  });

  it('refuses a large message in pieces that is not data', async () => {
    const head = stream.slice(0, 4);
    const piece: BaseBackupEvent = { kind: 'copyData', chunk: Buffer.from('p1234'), first: true, last: false };
    expect(await failure(true, [...head, piece])).toMatch(/a large message of type 0x70/);
  });

  it('refuses a stream that breaks the protocol', async () => {
    const head = stream.slice(0, 3);
    expect(await failure(true, [...head, typed('d', tsTar)])).toMatch(/^unable to take base backup 'lbl': data before the first archive$/);
    expect(await failure(true, [...head, archive('16386.tar')])).toMatch(/archive '16386.tar' is not in the tablespace list/);
    expect(await failure(true, [...head, archive('16385.tar', '/elsewhere')])).toMatch(
      /archive '16385.tar' is for '\/elsewhere', the tablespace list says '\/srv\/ts'/,
    );
    expect(await failure(true, [...head, archive('base.tar', '/x')])).toMatch(/the tablespace list says ''/);
    expect(await failure(true, [...head, archive('base.tar'), typed('d', TERMINATOR), archive('base.tar')])).toMatch(
      /archive base.tar sent twice/,
    );
    expect(await failure(true, [...head, typed('m'), typed('m')])).toMatch(/a second manifest/);
    expect(await failure(true, [...head, typed('m'), archive('base.tar')])).toMatch(/archive 'base.tar' after the manifest/);
    expect(await failure(true, [...head, archive('base.tar.gz')])).toMatch(/not base.tar or <oid>.tar/);
    expect(await failure(true, [...head, copyEnd, copyStart])).toMatch(/a second CopyOut stream/);
    expect(await failure(true, [...head, copyStart])).toMatch(/a CopyOut stream started out of order/);
    expect(await failure(true, [startRs, copyStart])).toMatch(/started out of order/);
    expect(await failure(true, [startRs, raw(Buffer.from('d'))])).toMatch(/data outside a CopyOut stream/);
    expect(await failure(true, [startRs, copyEnd])).toMatch(/CopyDone outside a CopyOut stream/);
    expect(await failure(true, [...head, endRs])).toMatch(/unexpected result set 3/);
    // An archive must end with its terminator on 15+ (a truncated stream is not a backup).
    expect(await failure(true, [...head, archive('base.tar'), typed('d', baseTar), typed('m')])).toMatch(
      /ends inside header or terminator/,
    );
  });

  it('refuses unsafe entry paths', async () => {
    for (const name of ['../etc/passwd', 'base//1', '/abs', 'a/./b', 'a\\b']) {
      const msg = await failure(true, [...stream.slice(0, 3), archive('base.tar'), typed('d', file(name, Buffer.from('x')))]);
      expect(msg).toMatch(/unsafe entry path/);
    }
  });

  it('finish() insists on the end position, every archive and a manifest', async () => {
    expect(await failure(true, stream.slice(0, -1), true)).toMatch(/the server sent no end position/);
    const noTs = [...stream.slice(0, 3), ...stream.slice(7)];
    expect(await failure(true, noTs, true)).toMatch(/no archive for 16385.tar/);
    const noManifest = [...stream.slice(0, 11), copyEnd, endRs];
    expect(await failure(true, noManifest, true)).toMatch(/the server sent no backup_manifest/);
  });
});

describe('BackupStreamReader, PostgreSQL 13/14 CopyOut per tablespace', () => {
  const stream: BaseBackupEvent[] = [
    startRs,
    spcRs([
      ['16385', '/srv/ts', '2'],
      [null, null, '10'],
    ]),
    copyStart,
    raw(tsTar),
    copyEnd,
    copyStart,
    raw(baseTar.subarray(0, 100)),
    raw(baseTar.subarray(100)),
    copyEnd,
    copyStart,
    raw(Buffer.from('{}')),
    copyEnd,
    endRs,
  ];

  it('names archives by header order, counts received bytes as progress', async () => {
    const { sink, reader } = await run(false, stream);
    expect(sink.calls.filter((c) => !c.startsWith('progress'))).toEqual([...expectedCalls, 'manifest {}']);
    const progress = sink.calls.filter((c) => c.startsWith('progress')).map((c) => Number(c.split(' ')[1]));
    expect(progress).toEqual([tsTar.length, tsTar.length + 100, tsTar.length + baseTar.length, tsTar.length + baseTar.length + 2]);
    expect(reader.finish().endLsn).toBe(0x2000100n);
  });

  it('refuses a CopyOut more than tablespaces + manifest, and truncation inside an entry', async () => {
    const extra = [...stream.slice(0, 12), copyStart];
    expect(await failure(false, extra)).toMatch(/unexpected CopyOut stream 4/);
    const cut = [...stream.slice(0, 3), raw(tsTar.subarray(0, 1024)), copyEnd];
    expect(await failure(false, cut)).toMatch(/unable to parse tar archive '16385.tar': archive ends inside file data/);
  });

  it('throws ReplicationError for protocol faults', async () => {
    const err = await run(false, [startRs, startRs, startRs, startRs]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationError);
  });
});
