/** The words `walvault restore` prints: what was restored, what recovery will do, the one step left. */
import type { RecoveryTarget } from './plan.js';
import type { RestoreResult } from './restore.js';
import { shellQuote } from './recovery.js';

function mib(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

export function describeTarget(t: RecoveryTarget): string {
  switch (t.kind) {
    case 'latest':
      return 'end of the archived WAL (no target)';
    case 'immediate':
      return 'immediate (the end of the backup)';
    case 'time':
      return `time '${t.text}'`;
    case 'lsn':
      return `LSN ${t.text}`;
    case 'xid':
      return `xid ${t.xid}`;
    case 'name':
      return `restore point '${t.name}'`;
  }
}

export function renderRestore(r: RestoreResult, target: RecoveryTarget): string {
  const secs = r.durationMs / 1000;
  const rate = secs > 0 ? r.bytes / 1048576 / secs : 0;
  const b = r.record;
  const lines = [
    `restored backup ${b.name} (PostgreSQL ${Math.floor(b.pgVersionNum / 10000)}, ended ${b.stopTime} at ${b.endLsn} on timeline ${b.endTimeline}) into ${r.pgdata}`,
    `  ${r.files} files, ${mib(r.bytes)} written from ${r.packs} packs in ${secs.toFixed(1)} s (${rate.toFixed(1)} MiB/s), every file's SHA-256 verified` +
      (r.kept > 0 || r.removed > 0 ? `; delta: ${r.kept} files kept (${mib(r.keptBytes)}), ${r.removed} entries removed` : ''),
  ];
  for (const t of r.tablespaces) {
    lines.push(`  tablespace ${t.oid}: ${t.location}${t.location !== t.original ? ` (was ${t.original})` : ''}`);
  }
  const settings = r.settings.filter(([k]) => k !== 'restore_command').map(([k, v]) => `${k}=${v}`);
  lines.push(`  recovery: ${describeTarget(target)}${settings.length > 0 ? ` (${settings.join(', ')})` : ''}`);
  lines.push(`  restore_command and recovery.signal written; archive settings in ${r.configFile}`);
  lines.push(`next: pg_ctl start -D ${shellQuote(r.pgdata)}   (as the data directory's owner)`);
  return lines.join('\n');
}
