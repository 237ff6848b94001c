/** segment inspect: one local WAL file's facts, as aligned fields or as JSON. */
import type { SegmentInspection } from '../../segment/inspect.js';
import { formatLsn } from '../../segment/lsn.js';
import { formatMagic } from '../../segment/pageheader.js';
import { formatSegSize } from '../../segment/segsize.js';
import { renderFields } from './layout.js';

export function segmentInspectionJson(file: string, i: SegmentInspection): Record<string, unknown> {
  return {
    file,
    systemId: i.systemId,
    pgMajor: i.pgMajor,
    magic: formatMagic(i.magic),
    timeline: i.timeline,
    lastPageTimeline: i.lastPageTimeline,
    startLsn: formatLsn(i.startLsn),
    segSize: i.segSize,
    blockSize: i.blockSize,
    pages: i.pages,
    validBytes: i.validBytes,
    end: i.end,
    complete: i.complete,
    truncated: i.truncated,
  };
}

const END_TEXT: Record<SegmentInspection['end'], string> = {
  full: 'every page is valid',
  zeros: 'valid WAL, then zeros (unused or switched-away space)',
  recycled: 'valid WAL, then pages of an older recycled segment',
  truncated: 'the file ends before the segment does',
};

export function renderSegmentInspection(file: string, i: SegmentInspection): string {
  return renderFields([
    ['file', file],
    ['system identifier', i.systemId],
    ['PostgreSQL', `${i.pgMajor} (page magic ${formatMagic(i.magic)})`],
    ['timeline', i.lastPageTimeline !== i.timeline ? `${i.timeline} (last page: ${i.lastPageTimeline})` : String(i.timeline)],
    ['start LSN', formatLsn(i.startLsn)],
    ['segment size', `${formatSegSize(i.segSize)} (${i.segSize} bytes)`],
    ['WAL block size', String(i.blockSize)],
    ['valid pages', `${i.pages} (${i.validBytes} bytes)`],
    ['end', END_TEXT[i.end]],
    ['complete', i.complete ? 'yes' : 'no'],
  ]);
}
