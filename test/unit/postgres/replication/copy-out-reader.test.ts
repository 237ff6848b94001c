import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CopyOutReader, GATHER_BYTES, interposeCopyOut } from '../../../../src/postgres/replication/copy-out-reader.js';
import { ReplicationError } from '../../../../src/common/errors.js';

/** One backend protocol frame: type byte, Int32 length (itself included), body. */
function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const filled = (n: number, seed: number): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7) & 0xff;
  return b;
};

/** A BASE_BACKUP conversation: non-CopyData frames and CopyData payloads of many sizes, in order. */
function conversation(): { bytes: Buffer; expected: Array<{ frame: Buffer } | { payload: Buffer }> } {
  const expected: Array<{ frame: Buffer } | { payload: Buffer }> = [];
  const parts: Buffer[] = [];
  const other = (f: Buffer): void => {
    parts.push(f);
    expected.push({ frame: f });
  };
  const data = (p: Buffer): void => {
    parts.push(frame('d', p));
    expected.push({ payload: p });
  };
  other(frame('T', Buffer.from('row description')));
  other(frame('C', Buffer.from('SELECT 1\0')));
  other(frame('H', Buffer.from([0, 0, 0])));
  other(frame('Z', Buffer.alloc(0)));
  [1, 9, 100, GATHER_BYTES, GATHER_BYTES + 1, 32_769, 70_000, 2].forEach((n, i) => data(filled(n, i)));
  other(frame('c', Buffer.alloc(0)));
  other(frame('Z', Buffer.from('I')));
  return { bytes: Buffer.concat(parts), expected };
}

interface Seen {
  events: Array<{ frame: Buffer } | { payload: Buffer }>;
  pieces: number;
}

/** Feeds `bytes` in reads of `size`, reusing one read buffer (as ReadIntoSocket does), with async handlers. */
async function feed(bytes: Buffer, size: number, asyncHandlers: boolean): Promise<Seen> {
  const seen: Seen = { events: [], pieces: 0 };
  let open: Buffer[] = [];
  const later = (): Promise<void> | undefined => (asyncHandlers ? new Promise((r) => setImmediate(r)) : undefined);
  const reader = new CopyOutReader(
    (piece, first, last) => {
      seen.pieces++;
      if (first) expect(open).toEqual([]);
      if (first && last && piece.length <= GATHER_BYTES) expect(piece.length).toBeGreaterThan(0);
      open.push(Buffer.from(piece));
      if (last) {
        seen.events.push({ payload: Buffer.concat(open) });
        open = [];
      }
      return later();
    },
    (f) => {
      seen.events.push({ frame: Buffer.from(f) });
      return later();
    },
  );
  const read = Buffer.alloc(size);
  for (let off = 0; off < bytes.length; off += size) {
    const n = bytes.copy(read, 0, off, off + size);
    await reader.push(read.subarray(0, n));
    // The next read overwrites the buffer: anything kept must have been copied.
    read.fill(0xee);
  }
  expect(open).toEqual([]);
  return seen;
}

describe('CopyOutReader', () => {
  it('delivers every CopyData payload and forwards every other frame, in order, for any read size', async () => {
    const { bytes, expected } = conversation();
    for (const size of [1, 2, 3, 5, 6, 7, 64, 4097, 8192, 32_768, 65_536, bytes.length]) {
      for (const asyncHandlers of [false, true]) {
        const seen = await feed(bytes, size, asyncHandlers);
        expect(seen.events).toEqual(expected);
      }
    }
  });

  it('hands small payloads over whole and large ones split by a read in pieces', async () => {
    const small = frame('d', filled(GATHER_BYTES, 1));
    const large = frame('d', filled(GATHER_BYTES + 1, 2));
    const pieces = (f: Buffer): Promise<number> => feed(f, 1000, false).then((s) => s.pieces);
    expect(await pieces(small)).toBe(1);
    // 5 header bytes + 4097 payload bytes in reads of 1000: 995, 1000, 1000, 1000 and 102.
    expect(await pieces(large)).toBe(5);
    // A large message inside one read is one view.
    expect((await feed(large, large.length, false)).pieces).toBe(1);
  });

  it('refuses an empty CopyData and a bad frame length', () => {
    const reader = new CopyOutReader(
      () => undefined,
      () => undefined,
    );
    expect(() => reader.push(frame('d', Buffer.alloc(0)))).toThrow(ReplicationError);
    const bad = Buffer.from([0x64, 0, 0, 0, 2]);
    expect(() =>
      new CopyOutReader(
        () => undefined,
        () => undefined,
      ).push(bad),
    ).toThrow(/frame length 2/);
  });
});

class FakeSocket extends EventEmitter {
  paused = 0;
  resumed = 0;
  pause(): this {
    this.paused++;
    return this;
  }
  resume(): this {
    this.resumed++;
    return this;
  }
}

describe('interposeCopyOut', () => {
  it('pauses while a handler is pending, forwards other frames to the listeners it replaced, and restores them', async () => {
    const socket = new FakeSocket();
    const theirs: Buffer[] = [];
    const listener = (b: Buffer): void => void theirs.push(b);
    socket.on('data', listener);
    let release: (() => void) | undefined;
    const got: Buffer[] = [];
    const stop = interposeCopyOut(
      socket,
      (piece) => {
        got.push(Buffer.from(piece));
        return new Promise<void>((r) => (release = r));
      },
      (err) => {
        throw err;
      },
    );
    const z = frame('Z', Buffer.from('I'));
    socket.emit('data', Buffer.concat([frame('d', Buffer.from('abc')), z]));
    expect(got).toEqual([Buffer.from('abc')]);
    expect(socket.paused).toBe(1);
    expect(theirs).toEqual([]);
    release!();
    await new Promise((r) => setImmediate(r));
    expect(theirs).toEqual([z]);
    expect(socket.resumed).toBe(1);
    stop();
    expect(socket.listeners('data')).toEqual([listener]);
  });

  it('reports a failing handler once and reads nothing after it', async () => {
    const socket = new FakeSocket();
    socket.on('data', () => undefined);
    const errors: Error[] = [];
    let calls = 0;
    interposeCopyOut(
      socket,
      () => {
        calls++;
        return Promise.reject(new Error('sink failed'));
      },
      (err) => errors.push(err),
    );
    socket.emit('data', Buffer.concat([frame('d', Buffer.from('a')), frame('d', Buffer.from('b'))]));
    await new Promise((r) => setImmediate(r));
    socket.emit('data', frame('d', Buffer.from('c')));
    expect(errors.map((e) => e.message)).toEqual(['sink failed']);
    expect(calls).toBe(1);
    expect(socket.resumed).toBe(0);
  });
});
