/**
 * The receive path of BASE_BACKUP's CopyOut stream. node-postgres's parser gathers every message
 * whole before it hands it on (a CopyData message spread over two socket reads is copied into its
 * merge buffer first) and makes an object per message. This reader walks the protocol frames of
 * each socket read itself:
 *
 * - CopyData payloads are handed on as views into the read, piece by piece as they arrive (a
 *   message spread over reads becomes several pieces, flagged `first`/`last`), so archive bytes are
 *   never copied before the packer's pack buffer. Small messages (at most GATHER_BYTES: progress,
 *   archive and manifest starts) split by a read boundary are gathered, so they always come whole;
 * - every other message (result sets, CopyOutResponse, CopyDone, notices, errors, ReadyForQuery) is
 *   gathered whole and passed, in order, to node-postgres's own listener, so its Query and the
 *   listeners on its connection see exactly what they saw before.
 *
 * Unlike the START_REPLICATION reader (copy-reader.ts), handlers may return a promise: the walk
 * then stops where it is and goes on when the promise settles, and the read stays valid until then
 * (the caller pauses the socket, which stops the next read into a reused buffer).
 */
import { ReplicationError } from '../../common/errors.js';
import { takeOverReads, theirListeners, type DataListener, type ReaderSocket } from './socket-takeover.js';

/** Message type byte + Int32 length. */
const FRAME_HEADER = 5;
const COPY_DATA = 0x64; // 'd'
/**
 * CopyData payloads up to this size are always delivered whole. The server's typed messages other
 * than archive data are far smaller ('p' 9 bytes, 'm' 1, 'n' two paths of at most MAXPGPATH);
 * archive data messages are ~32 kB and may come in pieces.
 */
export const GATHER_BYTES = 4096;

/** A piece of a CopyData payload; valid only until the returned promise settles. */
export type CopyDataHandler = (piece: Buffer, first: boolean, last: boolean) => Promise<void> | void;
/** A whole non-CopyData frame (header included), a buffer of its own. */
export type FrameHandler = (frame: Buffer) => Promise<void> | void;

export class CopyOutReader {
  private readonly head = Buffer.alloc(FRAME_HEADER);
  private headLen = 0;
  private mode: 'head' | 'data' | 'gather' = 'head';
  /** Payload bytes of the current CopyData message not yet delivered. */
  private bodyLeft = 0;
  private first = true;
  /** A small CopyData payload or a non-CopyData frame being gathered. */
  private gathered: Buffer | undefined;
  private gatheredLen = 0;
  private gatheredIsFrame = false;

  constructor(
    private readonly onData: CopyDataHandler,
    private readonly forward: FrameHandler,
  ) {}

  /**
   * Walks one socket read. Returns a promise when a handler is still pending; `chunk` must stay
   * unchanged until it settles, and push must not be called again before that.
   */
  push(chunk: Buffer): Promise<void> | undefined {
    return this.walk(chunk, 0);
  }

  private walk(chunk: Buffer, from: number): Promise<void> | undefined {
    let i = from;
    while (i < chunk.length) {
      let pending: Promise<void> | void;
      if (this.mode === 'data') {
        const n = Math.min(this.bodyLeft, chunk.length - i);
        const first = this.first;
        this.bodyLeft -= n;
        this.first = false;
        const last = this.bodyLeft === 0;
        if (last) this.reset();
        const piece = chunk.subarray(i, i + n);
        i += n;
        pending = this.onData(piece, first, last);
      } else if (this.mode === 'gather') {
        const into = this.gathered!;
        const n = Math.min(into.length - this.gatheredLen, chunk.length - i);
        chunk.copy(into, this.gatheredLen, i, i + n);
        this.gatheredLen += n;
        i += n;
        if (this.gatheredLen < into.length) continue;
        const isFrame = this.gatheredIsFrame;
        this.reset();
        pending = isFrame ? this.forward(into) : this.onData(into, true, true);
      } else {
        const n = Math.min(FRAME_HEADER - this.headLen, chunk.length - i);
        chunk.copy(this.head, this.headLen, i, i + n);
        this.headLen += n;
        i += n;
        if (this.headLen < FRAME_HEADER) continue;
        const bodyLen = this.head.readUInt32BE(1) - 4;
        if (bodyLen < 0) throw new ReplicationError(`unable to parse base backup stream: frame length ${bodyLen + 4}`);
        if (this.head[0] !== COPY_DATA) {
          this.gathered = Buffer.allocUnsafe(FRAME_HEADER + bodyLen);
          this.head.copy(this.gathered, 0, 0, FRAME_HEADER);
          this.gatheredLen = FRAME_HEADER;
          this.gatheredIsFrame = true;
          this.mode = 'gather';
          if (bodyLen > 0) continue;
          const frame = this.gathered;
          this.reset();
          pending = this.forward(frame);
        } else if (bodyLen === 0) {
          throw new ReplicationError('unable to parse base backup stream: empty CopyData');
        } else if (bodyLen <= chunk.length - i) {
          // Whole in this read: a view, whatever its size.
          const payload = chunk.subarray(i, i + bodyLen);
          i += bodyLen;
          this.reset();
          pending = this.onData(payload, true, true);
        } else if (bodyLen <= GATHER_BYTES) {
          this.gathered = Buffer.allocUnsafe(bodyLen);
          this.gatheredLen = 0;
          this.gatheredIsFrame = false;
          this.mode = 'gather';
          continue;
        } else {
          this.mode = 'data';
          this.bodyLeft = bodyLen;
          this.first = true;
          continue;
        }
      }
      if (pending) {
        const at = i;
        return pending.then(() => this.walk(chunk, at));
      }
    }
    return undefined;
  }

  private reset(): void {
    this.mode = 'head';
    this.headLen = 0;
    this.bodyLeft = 0;
    this.first = true;
    this.gathered = undefined;
    this.gatheredLen = 0;
  }
}

interface Socket extends ReaderSocket {
  pause(): unknown;
  resume(): unknown;
}

/**
 * Puts a CopyOutReader between the socket and node-postgres's listeners until the returned
 * function is called. While a handler is pending the socket is paused, so a ReadIntoSocket's
 * reused buffer (whose reads are handed over uncopied) is not read into again before the walk
 * over it has ended; any other socket's 'data' listeners are swapped for ours. A handler's
 * failure (or a malformed frame) is passed to `onError` once and nothing after it is read.
 * `afterForward` runs after node-postgres's listeners took a frame: what it returns (the work
 * those listeners started) is waited for like a handler's promise, so events stay in order.
 * It must be installed while the connection is idle, before the command is sent.
 */
export function interposeCopyOut(
  socket: Socket,
  onData: CopyDataHandler,
  onError: (err: Error) => void,
  afterForward?: () => Promise<void> | void,
): () => void {
  const theirs = theirListeners(socket);
  const reader = new CopyOutReader(onData, (frame) => {
    for (const fn of theirs) fn(frame);
    return afterForward?.();
  });
  let failed = false;
  const fail = (err: unknown): void => {
    if (failed) return;
    failed = true;
    onError(err instanceof Error ? err : new Error(String(err)));
  };
  const ours: DataListener = (chunk) => {
    if (failed) return;
    let pending: Promise<void> | undefined;
    try {
      pending = reader.push(chunk);
    } catch (err) {
      fail(err);
      return;
    }
    if (!pending) return;
    socket.pause();
    pending.then(() => {
      if (!failed) socket.resume();
    }, fail);
  };
  return takeOverReads(socket, ours, theirs);
}
