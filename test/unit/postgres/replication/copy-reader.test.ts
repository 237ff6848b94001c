import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CopyBothReader, interposeReader } from '../../../../src/postgres/replication/copy-reader.js';
import { parseReplicationMessage, type ReplicationMessage } from '../../../../src/postgres/replication/protocol.js';
import { ReplicationError } from '../../../../src/common/errors.js';
import { prng } from '../../codec/support/wal-like.js';

/** One backend protocol frame: type byte, Int32 length (itself included), body. */
function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function xlogData(start: bigint, walEnd: bigint, payload: Buffer): Buffer {
  const h = Buffer.alloc(25);
  h[0] = 0x77;
  h.writeBigUInt64BE(start, 1);
  h.writeBigUInt64BE(walEnd, 9);
  h.writeBigInt64BE(12345n, 17);
  return Buffer.concat([h, payload]);
}

function keepalive(walEnd: bigint, reply: boolean): Buffer {
  const b = Buffer.alloc(18);
  b[0] = 0x6b;
  b.writeBigUInt64BE(walEnd, 1);
  b.writeBigInt64BE(777n, 9);
  b[17] = reply ? 1 : 0;
  return b;
}

/** A START_REPLICATION conversation as the server sends it, and what each part should become. */
function conversation(seed: number, small = false): { bytes: Buffer; messages: ReplicationMessage[]; foreign: Buffer[] } {
  const next = prng(seed);
  const parts: Buffer[] = [];
  const messages: ReplicationMessage[] = [];
  const foreign: Buffer[] = [];
  const other = (f: Buffer): void => {
    parts.push(f);
    foreign.push(f);
  };
  other(frame('W', Buffer.from([0, 0, 0])));
  let pos = 0x3000000n;
  for (let i = 0; i < 40; i++) {
    if (next() % 5 === 0) {
      const body = keepalive(pos, next() % 2 === 0);
      parts.push(frame('d', body));
      messages.push(parseReplicationMessage(body));
      continue;
    }
    const sizes = small ? [0, 1, 7, 300, 5000] : [0, 1, 7, 300, 8192, 70_000, 131_072];
    const len = sizes[next() % sizes.length]!;
    const payload = Buffer.alloc(len);
    for (let k = 0; k < len; k++) payload[k] = next() & 0xff;
    const body = xlogData(pos, pos + 0x100000n, payload);
    parts.push(frame('d', body));
    messages.push(parseReplicationMessage(body));
    pos += BigInt(len);
  }
  other(frame('N', Buffer.from('SNOTICE\0Mhello\0\0', 'latin1')));
  other(frame('c', Buffer.alloc(0)));
  other(frame('T', Buffer.from('row description bytes', 'latin1')));
  other(frame('C', Buffer.from('START_STREAMING\0', 'latin1')));
  other(frame('Z', Buffer.from('I', 'latin1')));
  return { bytes: Buffer.concat(parts), messages, foreign };
}

/** Copies what the reader hands on (its views are only valid during the call). */
function collect(): { onMessage: (m: ReplicationMessage) => void; got: ReplicationMessage[] } {
  const got: ReplicationMessage[] = [];
  return {
    got,
    onMessage: (m) => void got.push(m.kind === 'keepalive' ? { ...m } : { ...m, data: Buffer.from(m.data) }),
  };
}

/**
 * Consecutive XLogData are compared as one byte run with its start, after checking that each piece
 * starts where the one before it ended.
 */
function normalise(ms: ReplicationMessage[]): unknown[] {
  // Consecutive XLogData messages are contiguous here, so they are compared as one byte run.
  const runs: unknown[] = [];
  let run: { start: bigint; bytes: Buffer[]; next: bigint } | undefined;
  for (const m of ms) {
    if (m.kind === 'keepalive') {
      run = undefined;
      runs.push(m);
      continue;
    }
    if (!run) {
      run = { start: m.dataStart, bytes: [], next: m.dataStart };
      runs.push(run);
    }
    expect(m.dataStart).toBe(run.next);
    run.next += BigInt(m.data.length);
    run.bytes.push(Buffer.from(m.data));
  }
  return runs.map((r) =>
    'bytes' in (r as object)
      ? { start: (r as { start: bigint }).start, data: Buffer.concat((r as { bytes: Buffer[] }).bytes).toString('hex') }
      : r,
  );
}

describe('CopyBothReader', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    // Byte by byte is slow: two seeds cover it.
    for (const split of seed <= 2 ? (['whole', 'one byte', 'random'] as const) : (['whole', 'random'] as const)) {
      it(`hands on every WAL byte and keepalive and forwards the rest verbatim (seed ${seed}, ${split})`, () => {
        const { bytes, messages, foreign } = conversation(seed, split === 'one byte');
        const got = collect();
        const forwarded: Buffer[] = [];
        const reader = new CopyBothReader(got.onMessage, (f) => forwarded.push(Buffer.from(f)));
        const cut = prng(seed * 7919);
        if (split === 'whole') reader.push(bytes);
        else
          for (let i = 0; i < bytes.length;) {
            const n = split === 'one byte' ? 1 : 1 + (cut() % 20_000);
            // Reuse one buffer for every read, as a socket reading into a fixed buffer would.
            const chunk = Buffer.from(bytes.subarray(i, i + n));
            reader.push(chunk);
            chunk.fill(0xee);
            i += n;
          }
        expect(normalise(got.got)).toEqual(normalise(messages));
        expect(Buffer.concat(forwarded).equals(Buffer.concat(foreign))).toBe(true);
        expect(forwarded.length).toBe(foreign.length);
      });
    }
  }

  it('gives each piece of a message that spans reads its own start', () => {
    const payload = Buffer.alloc(1000, 7);
    const bytes = frame('d', xlogData(0x5000n, 0x6000n, payload));
    const seen: Array<[bigint, number]> = [];
    const reader = new CopyBothReader(
      (m) => m.kind === 'xlogdata' && seen.push([m.dataStart, m.data.length]),
      () => undefined,
    );
    reader.push(bytes.subarray(0, 100));
    reader.push(bytes.subarray(100, 600));
    reader.push(bytes.subarray(600));
    // 100 - 30 header bytes = 70 in the first read.
    expect(seen).toEqual([
      [0x5000n, 70],
      [0x5000n + 70n, 500],
      [0x5000n + 570n, 430],
    ]);
  });

  it('refuses malformed replication messages', () => {
    const bad = [
      frame('d', Buffer.alloc(0)),
      frame('d', Buffer.from([0x77, 0, 0])),
      frame('d', Buffer.from([0x6b, 0, 0, 0])),
      frame('d', Buffer.from([0x41, 1, 2])),
    ];
    for (const b of bad) {
      const reader = new CopyBothReader(
        () => undefined,
        () => undefined,
      );
      expect(() => reader.push(b)).toThrow(ReplicationError);
    }
  });
});

describe('interposeReader', () => {
  it('stands between the socket and its listeners until removed', () => {
    const socket = new EventEmitter();
    const theirs: Buffer[] = [];
    const listener = (b: Buffer): void => void theirs.push(Buffer.from(b));
    socket.on('data', listener);
    const ours: ReplicationMessage[] = [];
    const errors: Error[] = [];
    const stop = interposeReader(
      socket,
      (m) => ours.push(m),
      (e) => errors.push(e),
    );
    const z = frame('Z', Buffer.from('I', 'latin1'));
    socket.emit('data', Buffer.concat([frame('d', keepalive(9n, true)), z]));
    expect(ours).toEqual([{ kind: 'keepalive', walEnd: 9n, sendTime: 777n, replyRequested: true }]);
    expect(Buffer.concat(theirs).equals(z)).toBe(true);
    // A bad frame is reported once; nothing after it is parsed.
    socket.emit('data', frame('d', Buffer.alloc(0)));
    socket.emit('data', frame('d', keepalive(10n, false)));
    expect(errors).toHaveLength(1);
    expect(ours).toHaveLength(1);
    stop();
    expect(socket.listeners('data')).toEqual([listener]);
    socket.emit('data', Buffer.from('raw'));
    expect(theirs.at(-1)?.toString()).toBe('raw');
  });
});
