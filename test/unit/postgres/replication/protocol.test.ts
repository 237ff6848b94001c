import { describe, expect, it } from 'vitest';
import {
  nowPgMicros,
  parseReplicationMessage,
  pgMicrosToDate,
  serializeStandbyStatus,
} from '../../../../src/postgres/replication/protocol.js';
import { ReplicationError } from '../../../../src/common/errors.js';
import { lsn } from '../../../../src/segment/lsn.js';

/** Independent vectors written byte by byte from the protocol documentation. */
function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

describe('parseReplicationMessage', () => {
  it('parses XLogData with payload', () => {
    const msg = parseReplicationMessage(hex(`77 00000016B374D848 00000016B3750000 0002C7E3E8A5B1F0 DEADBEEF01`));
    expect(msg).toEqual({
      kind: 'xlogdata',
      dataStart: 0x16b374d848n,
      walEnd: 0x16b3750000n,
      sendTime: 0x0002c7e3e8a5b1f0n,
      data: hex('DEADBEEF01'),
    });
  });

  it('parses XLogData with an empty payload', () => {
    const msg = parseReplicationMessage(hex(`77 0000000001000000 0000000001000000 0000000000000000`));
    expect(msg.kind).toBe('xlogdata');
    expect(msg.kind === 'xlogdata' && msg.data.length).toBe(0);
  });

  it('parses the full 64-bit LSN range', () => {
    const msg = parseReplicationMessage(hex(`77 FFFFFFFFFFFFFFFF FFFFFFFFFFFFFFFF 7FFFFFFFFFFFFFFF`));
    expect(msg.kind === 'xlogdata' && msg.dataStart).toBe(0xffffffffffffffffn);
  });

  it('parses a keepalive with and without reply request', () => {
    expect(parseReplicationMessage(hex(`6B 0000000003000148 0002C7E3E8A5B1F0 01`))).toEqual({
      kind: 'keepalive',
      walEnd: 0x3000148n,
      sendTime: 0x0002c7e3e8a5b1f0n,
      replyRequested: true,
    });
    const k = parseReplicationMessage(hex(`6B 0000000003000148 0000000000000000 00`));
    expect(k.kind === 'keepalive' && k.replyRequested).toBe(false);
  });

  it('rejects malformed input', () => {
    expect(() => parseReplicationMessage(new Uint8Array())).toThrow(ReplicationError);
    expect(() => parseReplicationMessage(hex('77 0000'))).toThrow(/XLogData/);
    expect(() => parseReplicationMessage(hex('6B 00000000030001480002C7E3E8A5B1F0'))).toThrow(/keepalive/);
    expect(() => parseReplicationMessage(hex('6B 00000000030001480002C7E3E8A5B1F00100'))).toThrow(/keepalive/);
    expect(() => parseReplicationMessage(hex('64 00'))).toThrow(/unknown type 0x64/);
  });

  it('reads from a view with a non-zero byte offset (pg hands out subarrays)', () => {
    const backing = hex(`AAAAAA 6B 0000000003000148 0000000000000001 01 BBBB`);
    const view = backing.subarray(3, 3 + 18);
    expect(parseReplicationMessage(view)).toMatchObject({ walEnd: 0x3000148n, sendTime: 1n, replyRequested: true });
  });
});

describe('serializeStandbyStatus', () => {
  it('writes the documented 34-byte layout', () => {
    const buf = serializeStandbyStatus({
      write: lsn(0x16b374d848n),
      flush: lsn(0x16b3740000n),
      apply: lsn(0x16b3000000n),
      clientTimeUs: 0x0002c7e3e8a5b1f0n,
      replyRequested: true,
    });
    expect(buf.toString('hex').toUpperCase()).toBe(
      '72' + '00000016B374D848' + '00000016B3740000' + '00000016B3000000' + '0002C7E3E8A5B1F0' + '01',
    );
  });

  it('defaults the clock to now in the PostgreSQL epoch and no reply request', () => {
    const before = nowPgMicros();
    const buf = serializeStandbyStatus({ write: lsn(1n), flush: lsn(1n), apply: lsn(0n) });
    const t = buf.readBigInt64BE(25);
    expect(t >= before && t - before < 5_000_000n).toBe(true);
    expect(buf[33]).toBe(0);
  });
});

describe('PostgreSQL epoch', () => {
  it('maps 2000-01-01T00:00:00Z to 0', () => {
    expect(nowPgMicros(Date.UTC(2000, 0, 1))).toBe(0n);
    expect(pgMicrosToDate(0n).toISOString()).toBe('2000-01-01T00:00:00.000Z');
    // 2026-11-25T00:00:00Z = 848,880,000 s after the PG epoch (computed with Python datetime).
    expect(nowPgMicros(Date.UTC(2026, 10, 25))).toBe(848_880_000_000_000n);
  });
});
