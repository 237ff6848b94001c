/** wal-show: the ShowReport as JSON (`--json`) or as a table, a gap list and a WAL map. */
import { describeGap } from '../../archive/catalog/timelines.js';
import { formatBytes } from '../../common/format.js';
import type { ShowReport } from '../../ops/show.js';
import { formatLsn, lsn } from '../../segment/lsn.js';
import { segmentFileName } from '../../segment/names.js';
import { renderTable } from './layout.js';
import { renderTimelineMap } from './timeline-map.js';

export function showJson(r: ShowReport): Record<string, unknown> {
  const segSize = r.layout.segSize;
  const name = (tli: number, segno: bigint | null): string | null => (segno === null ? null : segmentFileName(tli, segno, segSize));
  return {
    archive: r.archive,
    identity: r.identity,
    timelines: r.layout.timelines.map((t) => ({
      timeline: t.timeline,
      parent: t.parent,
      switchPoint: t.switchPoint === null ? null : formatLsn(t.switchPoint),
      history: t.history,
      firstSegment: name(t.timeline, t.first),
      lastSegment: name(t.timeline, t.last),
      startLsn: t.first === null ? null : formatLsn(lsn(t.first * BigInt(segSize))),
      endLsn: t.last === null ? null : formatLsn(lsn((t.last + 1n) * BigInt(segSize))),
      segments: t.segments,
      storedBytes: t.storedBytes,
      partials: t.partials.map((s) => `${segmentFileName(t.timeline, s, segSize)}.partial`),
      backups: t.backups,
      gaps: t.gaps.map((g) => ({
        first: segmentFileName(t.timeline, g.first, segSize),
        last: segmentFileName(t.timeline, g.last, segSize),
        segments: Number(g.last - g.first + 1n),
      })),
    })),
    historyIssues: r.historyIssues,
    backups: r.backups,
  };
}

export function renderShow(r: ShowReport, opts: { width: number }): string {
  const segSize = r.layout.segSize;
  const id = r.identity;
  const lines = [`archive: ${r.archive} (system ${id.systemId}, PostgreSQL ${id.pgMajor}, ${formatBytes(segSize)} segments)`, ''];
  lines.push(
    renderTable(
      [
        { title: 'TLI', align: 'right' },
        { title: 'PARENT', align: 'right' },
        { title: 'SWITCH POINT' },
        { title: 'FIRST SEGMENT' },
        { title: 'LAST SEGMENT' },
        { title: 'LSN RANGE' },
        { title: 'SEGMENTS', align: 'right' },
        { title: 'STORED', align: 'right' },
        { title: 'GAPS', align: 'right' },
      ],
      r.layout.timelines.map((t) => [
        String(t.timeline),
        t.parent === null ? (t.history === 'missing' ? '?' : '-') : String(t.parent),
        t.switchPoint === null ? '-' : formatLsn(t.switchPoint),
        t.first === null ? '-' : segmentFileName(t.timeline, t.first, segSize),
        t.last === null ? '-' : segmentFileName(t.timeline, t.last, segSize),
        t.first === null || t.last === null
          ? '-'
          : `${formatLsn(lsn(t.first * BigInt(segSize)))} - ${formatLsn(lsn((t.last + 1n) * BigInt(segSize)))}`,
        String(t.segments),
        formatBytes(t.storedBytes),
        String(t.gaps.length),
      ]),
    ),
  );
  lines.push('');
  if (r.layout.gaps.length === 0) lines.push('gaps: none');
  else {
    lines.push('gaps:');
    for (const g of r.layout.gaps) lines.push(`  timeline ${g.timeline}: missing ${describeGap(g, segSize)}`);
  }
  const extras = r.layout.timelines.flatMap((t) => [
    ...t.partials.map((s) => `  ${segmentFileName(t.timeline, s, segSize)}.partial`),
    ...t.backups.map((b) => `  ${b}`),
  ]);
  if (extras.length > 0) lines.push('partial segments and backup labels:', ...extras);
  if (r.backups.length > 0) {
    lines.push('base backups (walvault backup-list for more):');
    for (const b of r.backups) {
      lines.push(b.endLsn === null ? `  ${b.name}: ${b.status}` : `  ${b.name}: timeline ${b.timeline}, ${b.startLsn} .. ${b.endLsn}`);
    }
  }
  if (r.historyIssues.length > 0) lines.push('history problems:', ...r.historyIssues.map((i) => `  ${i}`));
  lines.push('', ...renderTimelineMap(r.layout, { width: opts.width }));
  return lines.join('\n');
}
