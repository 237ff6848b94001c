import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { type Command } from 'commander';
import { LocalIoError, describeCause } from '../../common/errors.js';
import { inspectSegment, type SegmentInspection } from '../../segment/inspect.js';
import { formatLsn } from '../../segment/lsn.js';
import { tryClassifyWalFileName } from '../../segment/names.js';
import { formatMagic } from '../../segment/pageheader.js';
import { formatSegSize } from '../../segment/segsize.js';
import type { RunFn } from '../context.js';

export function registerSegment(program: Command, run: RunFn): void {
  const segment = program.command('segment').description('Work with local WAL segment files');
  const inspect = segment
    .command('inspect')
    .description('Show what a WAL segment file holds (system id, timeline, LSN, size, valid pages)')
    .argument('<file>', 'a WAL segment or .partial file')
    .option('--json', 'machine-readable output')
    .option('--system-id <id>', 'fail unless the segment belongs to this database system')
    .option('--log-level <level>', 'log level', 'warn');
  inspect.action((file: string) =>
    run(inspect, async (ctx) => {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw new LocalIoError(`unable to read WAL file '${file}': ${describeCause(err)}`, { cause: err });
      }
      const name = basename(file);
      const classified = tryClassifyWalFileName(name);
      const named = classified?.kind === 'segment' || classified?.kind === 'partial';
      const opts = inspect.opts<{ json?: boolean; systemId?: string }>();
      const info = inspectSegment(bytes, {
        ...(named ? { expectedName: name } : {}),
        ...(opts.systemId ? { expectedSystemId: opts.systemId } : {}),
      });
      ctx.out(opts.json ? JSON.stringify(toJson(file, info), null, 2) : toText(file, info));
    }),
  );
}

function toJson(file: string, i: SegmentInspection): Record<string, unknown> {
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

function toText(file: string, i: SegmentInspection): string {
  const rows: Array<[string, string]> = [
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
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n');
}
