/**
 * Our own readers of a replication connection (copy-reader.ts for START_REPLICATION,
 * copy-out-reader.ts for BASE_BACKUP) take the socket's reads from node-postgres while a command
 * streams, and give them back afterwards. A ReadIntoSocket (read-socket.ts) hands its reads over
 * uncopied; on any other socket node-postgres's 'data' listeners are swapped for ours.
 */
export type DataListener = (chunk: Buffer) => void;

export interface ReaderSocket {
  /** Present on a ReadIntoSocket (read-socket.ts). */
  setDirectReader?(reader: DataListener | undefined): void;
  // An EventEmitter's listeners are untyped; only node-postgres's data listener is expected here.
  listeners(event: 'data'): unknown[];
  on(event: 'data', fn: DataListener): unknown;
  removeListener(event: 'data', fn: DataListener): unknown;
}

/** node-postgres's 'data' listeners, which receive whatever frames our reader does not consume. */
export function theirListeners(socket: ReaderSocket): DataListener[] {
  return socket.listeners('data') as DataListener[];
}

/** Sends every read to `ours` until the returned function restores `theirs`. */
export function takeOverReads(socket: ReaderSocket, ours: DataListener, theirs: readonly DataListener[]): () => void {
  if (socket.setDirectReader) {
    const direct = socket.setDirectReader.bind(socket);
    direct(ours);
    return () => direct(undefined);
  }
  for (const fn of theirs) socket.removeListener('data', fn);
  socket.on('data', ours);
  return () => {
    socket.removeListener('data', ours);
    for (const fn of theirs) socket.on('data', fn);
  };
}
