/**
 * The replication connection's TCP (or Unix) socket. A plain net.Socket allocates a new 64 KiB
 * buffer for every read and passes it through the Readable stream machinery: at WAL streaming rates
 * that is thousands of short-lived external buffers a second for the GC, and RSS that waits for it.
 * This socket reads into one reused 256 KiB buffer (net's `onread` option). While streaming, the
 * replication reader takes each read directly, as a view that is valid only during the call; at
 * any other time (start-up, commands) each read is copied and emitted as 'data', which is what
 * node-postgres listens to.
 *
 * Only for connections without TLS: a TLS socket reads from the socket itself and is created by
 * node-postgres when it upgrades the connection.
 */
import net from 'node:net';

/** Large enough for a few maximal XLogData messages (128 kB each) per read. */
const READ_BUFFER_BYTES = 256 * 1024;

export type DirectReader = (chunk: Buffer) => void;

export class ReadIntoSocket extends net.Socket {
  private direct: DirectReader | undefined;

  constructor() {
    // `onread` is taken by the constructor only (net.connect passes its options there).
    const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    const target: { socket?: ReadIntoSocket } = {};
    // (@types/node lists `onread` for connect() only; net.Socket reads it from these options.)
    super({ onread: { buffer, callback: (n: number): boolean => target.socket!.onRead(buffer, n) } } as net.SocketConstructorOpts);
    target.socket = this;
  }

  /** Hands every read to `reader` (uncopied) instead of emitting 'data'; undefined restores 'data'. */
  setDirectReader(reader: DirectReader | undefined): void {
    this.direct = reader;
  }

  private onRead(buffer: Buffer, n: number): boolean {
    const chunk = buffer.subarray(0, n);
    if (this.direct) this.direct(chunk);
    // A copy: listeners may keep what they are given (node-postgres keeps a partial message).
    else this.emit('data', Buffer.from(chunk));
    return true;
  }
}

/** node-postgres's `stream` option: our socket unless the connection uses TLS. */
export function replicationSocket(config: { ssl?: unknown }): net.Socket {
  return config.ssl ? new net.Socket() : new ReadIntoSocket();
}
