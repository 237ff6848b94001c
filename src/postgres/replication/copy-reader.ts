/**
 * The receive fast path of a START_REPLICATION stream. node-postgres's parser gathers every
 * message whole before it hands it on: a 128 kB XLogData message spread over two or three socket
 * reads is copied into its merge buffer first, and a CopyData object is made per message. This
 * reader takes the socket's data while streaming and walks the protocol frames itself:
 *
 * - XLogData payload is handed on as views into the socket chunk, piece by piece as it arrives (a
 *   message spread over reads becomes several contiguous pieces, each with its own start), so WAL
 *   bytes are never copied before the spool's staging buffer;
 * - keepalives are decoded in place;
 * - every other message (CopyBothResponse, CopyDone, CommandComplete, the next-timeline result,
 *   ErrorResponse, ReadyForQuery, notices) is gathered whole and passed, in order, to the listener
 *   node-postgres had on the socket, so its Query ends exactly as before.
 *
 * It must be installed while the connection is idle (before START_REPLICATION is sent): then
 * node-postgres's parser holds no partial message and every byte the server sends from there on
 * passes through here first.
 */
import { ReplicationError } from '../../common/errors.js';
import type { Lsn } from '../../segment/lsn.js';
import type { ReplicationMessage } from './protocol.js';
import { takeOverReads, theirListeners, type DataListener, type ReaderSocket } from './socket-takeover.js';

/** Message type byte + Int32 length. */
const FRAME_HEADER = 5;
/** 'w' + dataStart + walEnd + sendTime. */
const XLOGDATA_HEADER = 25;
/** 'k' + walEnd + sendTime + replyRequested. */
const KEEPALIVE_LEN = 18;
const COPY_DATA = 0x64; // 'd'
const XLOGDATA = 0x77; // 'w'
const KEEPALIVE = 0x6b; // 'k'

type Socket = ReaderSocket;

export class CopyBothReader {
  /** The frame header and, for CopyData, the replication sub-header, gathered across reads. */
  private readonly head = Buffer.alloc(FRAME_HEADER + XLOGDATA_HEADER);
  private headLen = 0;
  private need = FRAME_HEADER;
  /** Body bytes of the current frame after what `head` holds. */
  private bodyLeft = 0;
  private mode: 'head' | 'wal' | 'other' = 'head';
  private walPos: Lsn = 0n as Lsn;
  private walEnd: Lsn = 0n as Lsn;
  private sendTime = 0n;
  /** A non-CopyData frame being gathered for node-postgres. */
  private other: Buffer | undefined;
  private otherLen = 0;

  constructor(
    private readonly onMessage: (msg: ReplicationMessage) => void,
    private readonly forward: (frame: Buffer) => void,
  ) {}

  /** Feeds one socket chunk; handlers run synchronously, and views into it are valid only then. */
  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.mode === 'wal') {
        const n = Math.min(this.bodyLeft, chunk.length - i);
        const dataStart = this.walPos;
        this.walPos = (this.walPos + BigInt(n)) as Lsn;
        this.bodyLeft -= n;
        if (this.bodyLeft === 0) this.reset();
        this.onMessage({ kind: 'xlogdata', dataStart, walEnd: this.walEnd, sendTime: this.sendTime, data: chunk.subarray(i, i + n) });
        i += n;
        continue;
      }
      if (this.mode === 'other') {
        const n = Math.min(this.other!.length - this.otherLen, chunk.length - i);
        chunk.copy(this.other!, this.otherLen, i, i + n);
        this.otherLen += n;
        i += n;
        if (this.otherLen === this.other!.length) {
          const frame = this.other!;
          this.reset();
          this.forward(frame);
        }
        continue;
      }
      const n = Math.min(this.need - this.headLen, chunk.length - i);
      chunk.copy(this.head, this.headLen, i, i + n);
      this.headLen += n;
      i += n;
      if (this.headLen === this.need) this.headComplete();
    }
  }

  private reset(): void {
    this.mode = 'head';
    this.headLen = 0;
    this.need = FRAME_HEADER;
    this.other = undefined;
    this.otherLen = 0;
  }

  /** `head` holds `need` bytes: decide what follows. */
  private headComplete(): void {
    const h = this.head;
    const bodyLen = h.readUInt32BE(1) - 4;
    if (bodyLen < 0) throw new ReplicationError(`unable to parse replication stream: frame length ${bodyLen + 4}`);
    if (h[0] !== COPY_DATA) {
      this.other = Buffer.allocUnsafe(FRAME_HEADER + bodyLen);
      h.copy(this.other, 0, 0, FRAME_HEADER);
      this.otherLen = FRAME_HEADER;
      this.mode = 'other';
      if (bodyLen === 0) {
        const frame = this.other;
        this.reset();
        this.forward(frame);
      }
      return;
    }
    if (this.headLen === FRAME_HEADER) {
      if (bodyLen === 0) throw new ReplicationError('unable to parse replication message: empty CopyData');
      this.need = FRAME_HEADER + 1;
      return;
    }
    const type = h[FRAME_HEADER];
    if (type === XLOGDATA) {
      if (bodyLen < XLOGDATA_HEADER) {
        throw new ReplicationError(`unable to parse XLogData: ${bodyLen} bytes, header needs ${XLOGDATA_HEADER}`);
      }
      if (this.headLen < FRAME_HEADER + XLOGDATA_HEADER) {
        this.need = FRAME_HEADER + XLOGDATA_HEADER;
        return;
      }
      this.walPos = h.readBigUInt64BE(FRAME_HEADER + 1) as Lsn;
      this.walEnd = h.readBigUInt64BE(FRAME_HEADER + 9) as Lsn;
      this.sendTime = h.readBigInt64BE(FRAME_HEADER + 17);
      this.bodyLeft = bodyLen - XLOGDATA_HEADER;
      if (this.bodyLeft > 0) {
        this.mode = 'wal';
        return;
      }
      this.reset();
      const empty = this.head.subarray(0, 0);
      this.onMessage({ kind: 'xlogdata', dataStart: this.walPos, walEnd: this.walEnd, sendTime: this.sendTime, data: empty });
      return;
    }
    if (type === KEEPALIVE) {
      if (bodyLen !== KEEPALIVE_LEN) throw new ReplicationError(`unable to parse keepalive: ${bodyLen} bytes, expected ${KEEPALIVE_LEN}`);
      if (this.headLen < FRAME_HEADER + KEEPALIVE_LEN) {
        this.need = FRAME_HEADER + KEEPALIVE_LEN;
        return;
      }
      const walEnd = h.readBigUInt64BE(FRAME_HEADER + 1) as Lsn;
      const sendTime = h.readBigInt64BE(FRAME_HEADER + 9);
      const replyRequested = h[FRAME_HEADER + 17] !== 0;
      this.reset();
      this.onMessage({ kind: 'keepalive', walEnd, sendTime, replyRequested });
      return;
    }
    throw new ReplicationError(`unable to parse replication message: unknown type 0x${(type ?? 0).toString(16).padStart(2, '0')}`);
  }
}

/**
 * Puts a reader between the socket and node-postgres's listeners until the returned function is
 * called: frames the reader does not consume go to those listeners, in order. A ReadIntoSocket
 * hands its reads over uncopied; any other socket's 'data' listeners are swapped for ours.
 * `afterRead` sees the size of each read once it is consumed.
 */
export function interposeReader(
  socket: Socket,
  onMessage: (msg: ReplicationMessage) => void,
  onError: (err: Error) => void,
  afterRead?: (bytes: number) => void,
): () => void {
  const theirs = theirListeners(socket);
  const reader = new CopyBothReader(onMessage, (frame) => {
    for (const fn of theirs) fn(frame);
  });
  let failed = false;
  const ours: DataListener = (chunk) => {
    if (failed) return;
    try {
      reader.push(chunk);
    } catch (err) {
      // Stop at the first bad message or write failure: nothing after it is trusted.
      failed = true;
      onError(err as Error);
      return;
    }
    afterRead?.(chunk.length);
  };
  return takeOverReads(socket, ours, theirs);
}
