import type { Metrics, MetricsSource, UploadObserver } from './metrics.js';
import { describeCause } from '../common/errors.js';
import type { AgentStatus } from './agent-status.js';

/** Live counters of `walvault daemon`, exposed as /status (the metrics hear the same uploads). */
export interface DaemonStats {
  /** Uploaded; files the archive already held are `alreadyArchived`. */
  filesArchived: number;
  /** Original bytes of the uploaded files. */
  bytesArchived: number;
  alreadyArchived: number;
  errors: number;
  lastArchived: string | null;
  lastArchivedAt: string | null;
  lastError: string | null;
  readyFiles: number;
}

export function newDaemonStats(): DaemonStats {
  return {
    filesArchived: 0,
    bytesArchived: 0,
    alreadyArchived: 0,
    errors: 0,
    lastArchived: null,
    lastArchivedAt: null,
    lastError: null,
    readyFiles: 0,
  };
}

/** Keeps `stats` up to date from upload outcomes. */
export function daemonStatsObserver(stats: DaemonStats): UploadObserver {
  return {
    archived(name, r) {
      if (r.status === 'uploaded') {
        stats.filesArchived++;
        stats.bytesArchived += r.size;
      } else {
        stats.alreadyArchived++;
      }
      stats.lastArchived = name;
      stats.lastArchivedAt = new Date().toISOString();
    },
    failed(_name, err) {
      stats.errors++;
      stats.lastError = describeCause(err);
    },
  };
}

export function daemonMetricsSource(stats: DaemonStats): MetricsSource {
  return {
    status: () => ({ ...stats, ...daemonAgentStatus(stats) }),
    refresh(m: Metrics) {
      m.queueDepth.set(stats.readyFiles);
    },
  };
}

/** The daemon's counters in the shared /status schema. */
export function daemonAgentStatus(stats: DaemonStats): AgentStatus {
  return {
    agent: 'daemon',
    lastArchivedSegment: stats.lastArchived,
    lastArchivedAt: stats.lastArchivedAt,
    archivedLsn: null,
    lagBytes: null,
    queue: stats.readyFiles,
    connected: null,
    lastError: stats.lastError,
  };
}
