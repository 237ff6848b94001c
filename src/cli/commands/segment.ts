import { type Command } from 'commander';
import { inspectSegmentFile } from '../../ops/segment-inspect.js';
import type { RunFn } from '../context.js';
import { renderSegmentInspection, segmentInspectionJson } from '../render/segment.js';

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
      const opts = inspect.opts<{ json?: boolean; systemId?: string }>();
      const info = await inspectSegmentFile(file, opts.systemId !== undefined ? { systemId: opts.systemId } : {});
      ctx.out(opts.json ? JSON.stringify(segmentInspectionJson(file, info), null, 2) : renderSegmentInspection(file, info));
    }),
  );
}
