/** identity-rebuild: the RebuildReport as the lines an operator reads (`--json` prints the report). */
import type { RebuildReport } from '../../ops/identity-rebuild.js';
import { formatSegSize } from '../../segment/segsize.js';

export function renderRebuild(r: RebuildReport): string {
  const id = r.identity;
  if (id === null) {
    const keys = r.setAside.map((k) => `'${k}'`).join(', ');
    return [
      `${r.dryRun ? 'would set aside' : 'set aside'} the damaged identity record (the archive holds no WAL to rebuild it from): ${keys}`,
      '  the next wal-push or stream creates a new identity from its own segment',
    ].join('\n');
  }
  const what = `database system ${id.systemId}, PostgreSQL ${id.pgMajor}, ${formatSegSize(id.walSegSize)} segments`;
  const lines: string[] = [];
  if (r.action === 'intact') lines.push(`archive identity is intact (both copies): ${what}; nothing to do`);
  else {
    const verb = r.action === 'repaired' ? 'repair' : 'rebuild';
    lines.push(`${r.dryRun ? `would ${verb}` : `${verb === 'repair' ? 'repaired' : 'rebuilt'}`} archive identity: ${what}`);
    if (r.action === 'rebuilt') lines.push(`  from ${r.objectsRead} object headers; PostgreSQL major from '${r.decoded}'`);
    lines.push(`  ${r.dryRun ? 'would write' : 'wrote'} ${r.written.map((k) => `'${k}'`).join(', ')}`);
  }
  if (r.unreadable.length > 0) {
    lines.push(
      `  ${r.unreadable.length} objects with unreadable headers (check them with wal-verify): ${r.unreadable.slice(0, 5).join(', ')}`,
    );
  }
  return lines.join('\n');
}
