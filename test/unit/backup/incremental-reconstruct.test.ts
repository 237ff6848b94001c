import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/common/errors.js';
import {
  combinedBackupLabel,
  planReconstruction,
  resolveChain,
  restoredPathOf,
  type ChainFile,
} from '../../../src/backup/incremental/reconstruct.js';

const B = 8192;
/** An INCREMENTAL member; header lengths written out (12 + 4n rounded up to 8192 when n > 0). */
function incr(blocks: number[], truncation: number, headerLength = blocks.length === 0 ? 12 : 8192): ChainFile {
  return {
    kind: 'incremental',
    header: {
      blockCount: blocks.length,
      truncationBlockLength: truncation,
      blockNumbers: blocks,
      headerLength,
      fileSize: headerLength + blocks.length * B,
    },
  };
}
const full = (blocks: number): ChainFile => ({ kind: 'full', size: blocks * B });
/** Renders runs as 'target-block:source@offset-in-blocks' strings to keep the tables readable. */
function perBlock(chain: ChainFile[]): string[] {
  const plan = planReconstruction(chain, 'f');
  const out: string[] = [];
  for (const r of plan.runs) {
    for (let i = 0; i < r.blocks; i++) {
      out.push(r.source === null ? 'zero' : `${r.source}@${(r.sourceOffset + i * B) / B}`);
    }
  }
  expect(out.length * B).toBe(plan.size);
  return out;
}

describe('planReconstruction', () => {
  it('a newest whole file is copied as is', () => {
    expect(planReconstruction([{ kind: 'full', size: 1234 }], 'f')).toEqual({ size: 1234, copyFrom: 0, runs: [] });
  });

  it('updates: changed blocks from the increment (after its 1-block header), the rest from the full', () => {
    // full has 4 blocks; increment carries blocks 3 and 1 (in that order), truncation 4
    expect(perBlock([incr([3, 1], 4), full(4)])).toEqual(['1@0', '0@2', '1@2', '0@1']);
    const plan = planReconstruction([incr([3, 1], 4), full(4)], 'f');
    expect(plan.runs).toEqual([
      { targetBlock: 0, blocks: 1, source: 1, sourceOffset: 0 },
      { targetBlock: 1, blocks: 1, source: 0, sourceOffset: 8192 + 8192 },
      { targetBlock: 2, blocks: 1, source: 1, sourceOffset: 2 * 8192 },
      { targetBlock: 3, blocks: 1, source: 0, sourceOffset: 8192 },
    ]);
  });

  it('an unchanged file (zero blocks, same length) is a whole copy of the full', () => {
    expect(planReconstruction([incr([], 5), full(5)], 'f')).toEqual({ size: 5 * B, copyFrom: 1, runs: [] });
  });

  it('truncation: blocks at or past the truncation length are not taken from older backups', () => {
    expect(perBlock([incr([], 2), full(6)])).toEqual(['1@0', '1@1']);
    expect(perBlock([incr([], 0), full(6)])).toEqual([]);
  });

  it('growth: new blocks from the increment, extension without WAL is zeros', () => {
    // full had 2 blocks; the relation grew to 6; blocks 2, 3 and 5 were written
    expect(perBlock([incr([2, 3, 5], 6), full(2)])).toEqual(['1@0', '1@1', '0@1', '0@2', 'zero', '0@3']);
    // a block past the truncation length extends the file
    expect(perBlock([incr([4], 2), full(2)])).toEqual(['1@0', '1@1', 'zero', 'zero', '0@1']);
  });

  it('dropped and recreated under the same relfilenode: the truncation to 0 hides the old pages', () => {
    expect(perBlock([incr([0, 1], 0), full(9)])).toEqual(['0@1', '0@2']);
  });

  it('a chain of three: newest wins, then the middle, then the full', () => {
    const chain = [incr([0], 4), incr([0, 2], 4), full(4)];
    expect(perBlock(chain)).toEqual(['0@1', '2@1', '1@2', '2@3']);
    // the middle increment's own header is two blocks long here (many numbers)
    expect(perBlock([incr([3], 4), incr([1], 4, 2 * B), full(4)])).toEqual(['2@0', '1@2', '2@2', '0@1']);
  });

  it('a chain of three: an intermediate truncation limits what the full may supply', () => {
    // cut to 2 before increment 1, grown back to 4 without WAL for blocks 2-3 before increment 2
    expect(perBlock([incr([], 4), incr([], 2), full(4)])).toEqual(['2@0', '2@1', 'zero', 'zero']);
    // grown back with WAL: the newest increment carries the blocks
    expect(perBlock([incr([2, 3], 4), incr([], 2), full(4)])).toEqual(['2@0', '2@1', '0@1', '0@2']);
    // blocks of the middle increment past the newest truncation are ignored
    expect(perBlock([incr([], 1), incr([0, 3], 4), full(4)])).toEqual(['1@1']);
  });

  it('merges contiguous blocks of one source into one run', () => {
    const plan = planReconstruction([incr([4, 5, 6], 10), full(10)], 'f');
    expect(plan.runs).toEqual([
      { targetBlock: 0, blocks: 4, source: 1, sourceOffset: 0 },
      { targetBlock: 4, blocks: 3, source: 0, sourceOffset: 8192 },
      { targetBlock: 7, blocks: 3, source: 1, sourceOffset: 7 * 8192 },
    ]);
  });

  it('a whole file shorter than the truncation length: the missing tail is zeros', () => {
    expect(perBlock([incr([], 3), { kind: 'full', size: 8192 + 100 }])).toEqual(['1@0', 'zero', 'zero']);
  });

  it('refuses a chain without a whole file', () => {
    expect(() => planReconstruction([incr([], 1), incr([], 1)], 'base/5/1')).toThrow(IntegrityError);
    expect(() => planReconstruction([], 'base/5/1')).toThrow(/chain is empty/);
  });
});

describe('resolveChain', () => {
  const set = (...paths: string[]): { has(p: string): boolean } => new Set(paths);

  it('a file absent from the newest backup is deleted: not restored', () => {
    expect(resolveChain('base/5/16384', [set('base/5/16390'), set('base/5/16384')])).toBeUndefined();
  });

  it('walks INCREMENTAL members down to the first whole copy', () => {
    const backups = [set('base/5/INCREMENTAL.16384'), set('base/5/INCREMENTAL.16384'), set('base/5/16384'), set('base/5/16384')];
    expect(resolveChain('base/5/16384', backups)).toEqual([
      { backup: 0, path: 'base/5/INCREMENTAL.16384', kind: 'incremental' },
      { backup: 1, path: 'base/5/INCREMENTAL.16384', kind: 'incremental' },
      { backup: 2, path: 'base/5/16384', kind: 'full' },
    ]);
    expect(resolveChain('base/5/16384', [set('base/5/16384'), set('base/5/INCREMENTAL.16384')])).toEqual([
      { backup: 0, path: 'base/5/16384', kind: 'full' },
    ]);
  });

  it('a gap or an ambiguous backup is an integrity failure', () => {
    expect(() => resolveChain('base/5/1', [set('base/5/INCREMENTAL.1'), set()])).toThrow(/backup 1 of the chain holds neither/);
    expect(() => resolveChain('base/5/1', [set('base/5/INCREMENTAL.1', 'base/5/1')])).toThrow(/both whole and as/);
    expect(() => resolveChain('base/5/1', [set('base/5/INCREMENTAL.1')])).toThrow(/no backup of the chain holds the file whole/);
  });

  it('restoredPathOf maps INCREMENTAL names back', () => {
    expect(restoredPathOf('base/5/INCREMENTAL.16384.1')).toBe('base/5/16384.1');
    expect(restoredPathOf('global/pg_control')).toBe('global/pg_control');
  });
});

describe('combinedBackupLabel', () => {
  it('drops the INCREMENTAL FROM lines and keeps the rest byte for byte', () => {
    const label = [
      'START WAL LOCATION: 0/6000028 (file 000000010000000000000006)',
      'CHECKPOINT LOCATION: 0/6000080',
      'BACKUP METHOD: streamed',
      'BACKUP FROM: primary',
      'START TIME: 2026-12-02 01:00:00 UTC',
      'LABEL: x',
      'START TIMELINE: 1',
      'INCREMENTAL FROM LSN: 0/4000028',
      'INCREMENTAL FROM TLI: 1',
      '',
    ].join('\n');
    expect(combinedBackupLabel(Buffer.from(label)).toString()).toBe(
      'START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nCHECKPOINT LOCATION: 0/6000080\nBACKUP METHOD: streamed\n' +
        'BACKUP FROM: primary\nSTART TIME: 2026-12-02 01:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n',
    );
  });
});
