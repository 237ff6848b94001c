import type { Metrics, MetricsSource } from './metrics.js';

/** Live counters of `walvault daemon`, exposed as metrics and /status. */
export interface DaemonStats {
  filesArchived: number;
  bytesArchived: number;
  errors: number;
  lastArchived: string | null;
  lastArchivedAt: string | null;
  lastError: string | null;
  readyFiles: number;
}

export function newDaemonStats(): DaemonStats {
  return { filesArchived: 0, bytesArchived: 0, errors: 0, lastArchived: null, lastArchivedAt: null, lastError: null, readyFiles: 0 };
}

export function daemonMetricsSource(stats: DaemonStats): MetricsSource {
  let seen = { files: 0, bytes: 0, errors: 0 };
  return {
    status: () => ({ ...stats }),
    refresh(m: Metrics) {
      m.segmentsArchived.inc(stats.filesArchived - seen.files);
      m.bytesArchived.inc(stats.bytesArchived - seen.bytes);
      if (stats.errors > seen.errors) m.uploadErrors.inc({ kind: 'upload' }, stats.errors - seen.errors);
      seen = { files: stats.filesArchived, bytes: stats.bytesArchived, errors: stats.errors };
      m.queueDepth.set(stats.readyFiles);
    },
  };
}
