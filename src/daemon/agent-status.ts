/**
 * The one `/status` schema of both agents (`walvault stream` and `walvault daemon`): the fields
 * `walvault status` and monitoring read. Each agent serves these beside its own counters. Documents
 * of agents older than this schema (the stream's and the daemon's own field names) still parse.
 */
export interface AgentStatus {
  readonly agent: 'stream' | 'daemon';
  /** The newest WAL file the agent archived (or found already archived), and when. */
  readonly lastArchivedSegment: string | null;
  readonly lastArchivedAt: string | null;
  /** End of the archived WAL, when the agent knows it (the stream does; the daemon reads files). */
  readonly archivedLsn: string | null;
  /** Bytes between the server's position and `archivedLsn`, when both are known. */
  readonly lagBytes: number | null;
  /** WAL files waiting to be archived: pending uploads (stream) or `.ready` files (daemon). */
  readonly queue: number | null;
  /** Whether the replication connection is up; null for an agent that has none (the daemon). */
  readonly connected: boolean | null;
  readonly lastError: string | null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Reads a served document into the shared schema (older agents' field names included). */
export function parseAgentStatus(doc: Record<string, unknown>): AgentStatus {
  const kind = doc['agent'] === 'stream' || doc['agent'] === 'daemon' ? doc['agent'] : 'connected' in doc ? 'stream' : 'daemon';
  return {
    agent: kind,
    lastArchivedSegment: str(doc['lastArchivedSegment']) ?? str(doc['lastArchived']),
    lastArchivedAt: str(doc['lastArchivedAt']),
    archivedLsn: str(doc['archivedLsn']),
    lagBytes: num(doc['lagBytes']),
    queue: num(doc['queue']) ?? num(doc['pendingUploads']) ?? num(doc['readyFiles']),
    connected: typeof doc['connected'] === 'boolean' ? doc['connected'] : null,
    lastError: str(doc['lastError']),
  };
}
