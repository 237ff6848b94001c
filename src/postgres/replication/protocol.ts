/**
 * Pure parse/serialize of the physical replication CopyBoth sub-protocol
 * (PostgreSQL docs, "Streaming Replication Protocol"). No sockets here: connection.ts feeds CopyData
 * payloads in and sends what these functions build.
 *
 *   XLogData          'w' u64 dataStart, u64 walEnd, i64 sendTime, bytes...
 *   Primary keepalive 'k' u64 walEnd, i64 sendTime, u8 replyRequested
 *   Standby status    'r' u64 write, u64 flush, u64 apply, i64 clientTime, u8 replyRequested
 *
 * All integers are big-endian (network order). Times are microseconds since 2000-01-01 00:00 UTC.
 * WAL positions leave and enter this module as Lsn values: any u64 is a valid Lsn, so no check is
 * needed on the way in.
 */
import { ReplicationError } from '../../common/errors.js';
import type { Lsn } from '../../segment/lsn.js';

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
export const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

export interface XLogData {
  readonly kind: 'xlogdata';
  readonly dataStart: Lsn;
  readonly walEnd: Lsn;
  readonly sendTime: bigint;
  /** A view into the received chunk: copy it before any asynchronous step. */
  readonly data: Uint8Array;
}

export interface PrimaryKeepalive {
  readonly kind: 'keepalive';
  readonly walEnd: Lsn;
  readonly sendTime: bigint;
  readonly replyRequested: boolean;
}

export type ReplicationMessage = XLogData | PrimaryKeepalive;

const XLOGDATA_HEADER = 25;
const KEEPALIVE_LEN = 18;
const STATUS_LEN = 34;

/** Parses one CopyData payload from the server. Throws ReplicationError on anything malformed. */
export function parseReplicationMessage(buf: Uint8Array): ReplicationMessage {
  if (buf.length === 0) throw new ReplicationError('unable to parse replication message: empty CopyData');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const type = buf[0];
  if (type === 0x77 /* 'w' */) {
    if (buf.length < XLOGDATA_HEADER) {
      throw new ReplicationError(`unable to parse XLogData: ${buf.length} bytes, header needs ${XLOGDATA_HEADER}`);
    }
    return {
      kind: 'xlogdata',
      dataStart: view.getBigUint64(1) as Lsn,
      walEnd: view.getBigUint64(9) as Lsn,
      sendTime: view.getBigInt64(17),
      data: buf.subarray(XLOGDATA_HEADER),
    };
  }
  if (type === 0x6b /* 'k' */) {
    if (buf.length !== KEEPALIVE_LEN) {
      throw new ReplicationError(`unable to parse keepalive: ${buf.length} bytes, expected ${KEEPALIVE_LEN}`);
    }
    return {
      kind: 'keepalive',
      walEnd: view.getBigUint64(1) as Lsn,
      sendTime: view.getBigInt64(9),
      replyRequested: buf[17] !== 0,
    };
  }
  throw new ReplicationError(`unable to parse replication message: unknown type 0x${(type ?? 0).toString(16).padStart(2, '0')}`);
}

export interface StandbyStatus {
  /** Last WAL byte + 1 received. */
  readonly write: Lsn;
  /** Last WAL byte + 1 durably stored (fsynced). This is what lets the slot advance. */
  readonly flush: Lsn;
  /** Last WAL byte + 1 "applied": for walvault, durably archived. */
  readonly apply: Lsn;
  readonly clientTimeUs?: bigint;
  readonly replyRequested?: boolean;
}

export function serializeStandbyStatus(s: StandbyStatus): Buffer {
  const buf = Buffer.alloc(STATUS_LEN);
  buf[0] = 0x72; // 'r'
  buf.writeBigUInt64BE(s.write, 1);
  buf.writeBigUInt64BE(s.flush, 9);
  buf.writeBigUInt64BE(s.apply, 17);
  buf.writeBigInt64BE(s.clientTimeUs ?? nowPgMicros(), 25);
  buf[33] = s.replyRequested ? 1 : 0;
  return buf;
}

/** Current time in PostgreSQL's epoch, microseconds. */
export function nowPgMicros(nowMs: number = Date.now()): bigint {
  return BigInt(Math.round(nowMs * 1000)) - PG_EPOCH_OFFSET_US;
}

/** Converts a PostgreSQL timestamp (µs since 2000-01-01) to a JS Date. */
export function pgMicrosToDate(us: bigint): Date {
  return new Date(Number((us + PG_EPOCH_OFFSET_US) / 1000n));
}
