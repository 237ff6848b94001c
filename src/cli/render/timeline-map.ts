/**
 * A compact picture of an archive in the terminal: one line per timeline, one bar over the whole
 * WAL range, scaled to the width. ASCII only, so it survives any terminal, pager or e-mail. Pure.
 *
 *   WAL map: 0/1000000 .. 0/F000000, 14 segments of 1.00 MiB, 1 column = 1 segment
 *     TL 1  ########.#####
 *     TL 2               ####
 *   legend: # archived  . missing  : partly missing (wider columns)
 */
import { formatLsn, lsn } from '../../segment/lsn.js';
import { clipRange, rangeLength, type SegmentRange } from '../../archive/catalog/segment-ranges.js';
import { formatBytes } from '../../common/format.js';
import type { ArchiveLayout } from '../../archive/catalog/timelines.js';

const MAP_CHARS = { archived: '#', missing: '.', partly: ':', outside: ' ' } as const;

/** Cell `index` of `columns` over `total` segments starting at `lo`: the segment numbers it stands for. */
export function cellRange(lo: bigint, total: bigint, columns: number, index: number): SegmentRange {
  const cols = BigInt(columns);
  const i = BigInt(index);
  return { first: lo + (i * total) / cols, last: lo + ((i + 1n) * total) / cols - 1n };
}

function missingIn(gaps: readonly SegmentRange[], range: SegmentRange): bigint {
  let n = 0n;
  for (const g of gaps) {
    const c = clipRange(g, range);
    if (c) n += rangeLength(c);
  }
  return n;
}

export function renderTimelineMap(layout: ArchiveLayout, opts: { width: number }): string[] {
  const spans = layout.timelines.filter((t) => t.span !== null);
  if (spans.length === 0) return ['WAL map: no segments archived'];
  const lo = spans.reduce((m, t) => (t.span!.first < m ? t.span!.first : m), spans[0]!.span!.first);
  const hi = spans.reduce((m, t) => (t.span!.last > m ? t.span!.last : m), spans[0]!.span!.last);
  const total = hi - lo + 1n;
  const labels = layout.timelines.map((t) => `TL ${t.timeline}`);
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const columns = Number(total < BigInt(Math.max(1, opts.width)) ? total : BigInt(Math.max(1, opts.width)));
  const perColumn = total / BigInt(columns);
  const scale =
    total === BigInt(columns)
      ? '1 column = 1 segment'
      : `1 column = ${perColumn}${total % BigInt(columns) === 0n ? '' : '-' + String(perColumn + 1n)} segments`;
  const size = BigInt(layout.segSize);
  const lines = [
    `WAL map: ${formatLsn(lsn(lo * size))} .. ${formatLsn(lsn((hi + 1n) * size))}, ${total} segments of ${formatBytes(layout.segSize)}, ${scale}`,
  ];
  layout.timelines.forEach((t, i) => {
    const label = `  ${labels[i]!.padEnd(labelWidth)}  `;
    if (t.span === null) {
      lines.push(`${label}(no segments)`);
      return;
    }
    let bar = '';
    for (let c = 0; c < columns; c++) {
      const part = clipRange(cellRange(lo, total, columns, c), t.span);
      if (!part) {
        bar += MAP_CHARS.outside;
        continue;
      }
      const missing = missingIn(t.gaps, part);
      bar += missing === 0n ? MAP_CHARS.archived : missing === rangeLength(part) ? MAP_CHARS.missing : MAP_CHARS.partly;
    }
    lines.push(`${label}${bar}`.trimEnd());
  });
  const wide = columns < Number(total) ? `  ${MAP_CHARS.partly} partly missing` : '';
  lines.push(`legend: ${MAP_CHARS.archived} archived  ${MAP_CHARS.missing} missing${wide}`);
  return lines;
}
