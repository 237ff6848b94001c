/** What the streaming agent is told (ReceiverOptions) and what it shows (/status, metrics). */
import type { Lsn } from '../segment/lsn.js';
import type { UploadObserver } from '../daemon/metrics.js';

export interface ReceiverOptions {
  readonly conninfo?: string;
  readonly slot?: string;
  readonly createSlot: boolean;
  /** fsync and report after every burst of messages (fit to be a synchronous standby). */
  readonly synchronous: boolean;
  readonly spoolDir: string;
  readonly statusIntervalMs: number;
  /** Finished segments waiting for upload before the agent stops reading from the server. */
  readonly maxPending: number;
  /** zstd threads that compress received segments (0: on the receiving thread). */
  readonly compressThreads?: number;
  readonly uploadConcurrency: number;
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly applicationName?: string;
  /** Hears every upload outcome as it happens (the metrics' duration histogram needs each one). */
  readonly uploads?: UploadObserver;
}

export interface ReceiverStats {
  connected: boolean;
  timeline: number;
  receivedLsn: Lsn | null;
  flushedLsn: Lsn | null;
  archivedLsn: Lsn | null;
  serverLsn: Lsn | null;
  bytesReceived: number;
  /** Segments uploaded; files the archive already held count in `alreadyArchived`. */
  segmentsArchived: number;
  /** Original bytes of the segments uploaded. */
  bytesArchived: number;
  alreadyArchived: number;
  uploadErrors: number;
  pendingUploads: number;
  lastError: string | null;
  lastArchivedSegment: string | null;
  lastArchivedAt: string | null;
  reconnects: number;
}

export function newReceiverStats(): ReceiverStats {
  return {
    connected: false,
    timeline: 0,
    receivedLsn: null,
    flushedLsn: null,
    archivedLsn: null,
    serverLsn: null,
    bytesReceived: 0,
    segmentsArchived: 0,
    bytesArchived: 0,
    alreadyArchived: 0,
    uploadErrors: 0,
    pendingUploads: 0,
    lastError: null,
    lastArchivedSegment: null,
    lastArchivedAt: null,
    reconnects: 0,
  };
}
