import { describe, expect, it } from 'vitest';
import type { CatalogEntry } from '../../../../src/archive/catalog/listing.js';
import { parseTimelineHistory } from '../../../../src/segment/history.js';
import { parseLsn } from '../../../../src/segment/lsn.js';
import { checkStructure } from '../../../../src/archive/catalog/verify-structure.js';

const MIB = 1024 * 1024;
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');

function seg(tli: number, segno: number, sha = SHA_A, extension = 'zst'): CatalogEntry {
  const fileName = `${hex8(tli)}00000000${hex8(segno)}`;
  return {
    fileName,
    sha256: sha,
    extension,
    encrypted: false,
    key: `wal/${hex8(tli)}/${fileName.slice(0, 16)}/${fileName}-${sha}.${extension}`,
    kind: 'segment',
    timeline: tli,
    segno: BigInt(segno),
    storedBytes: 100,
    mtime: new Date(0),
  };
}
function history(tli: number): CatalogEntry {
  const fileName = `${hex8(tli)}.history`;
  return {
    fileName,
    sha256: SHA_A,
    extension: 'zst',
    encrypted: false,
    key: `history/${fileName}-${SHA_A}.zst`,
    kind: 'history',
    timeline: tli,
    storedBytes: 40,
    mtime: new Date(0),
  };
}
const H2 = new Map([[2, parseTimelineHistory('1\t0/500000\tx\n', 2)]]);

describe('checkStructure', () => {
  it('reports names stored with different contents, not same-content copies', () => {
    const entries = [seg(1, 3), seg(1, 4), seg(1, 4, SHA_A, 'lz4'), seg(1, 5), seg(1, 5, SHA_B)];
    const r = checkStructure(entries, new Map(), [], MIB);
    expect(r.problems.map((p) => [p.kind, p.subject])).toEqual([['duplicate', '000000010000000000000005']]);
    expect(r.problems[0]!.message).toMatch(/^the archive holds 2 different versions/);
  });

  it('reports a damaged history file once, not again as missing', () => {
    const entries = [seg(1, 3), seg(1, 4), history(2), seg(2, 5)];
    const r = checkStructure(entries, new Map(), [{ fileName: '00000002.history', timeline: 2, message: 'unable to restore it' }], MIB);
    expect(r.problems).toEqual([{ kind: 'history', timeline: 2, subject: '00000002.history', message: 'unable to restore it' }]);
  });

  it('checks the path to one timeline, clipped to an LSN window, and notes a timeline without segments', () => {
    const entries = [seg(1, 1), seg(1, 3), seg(1, 4), history(2), seg(2, 5), seg(2, 7), seg(1, 9)];
    const all = checkStructure(entries, H2, [], MIB);
    expect(all.chainTimelines).toEqual([1, 2]);
    expect(all.problems.map((p) => p.message)).toEqual([
      'missing 000000010000000000000002',
      'missing 000000010000000000000005 .. 000000010000000000000008 (4 segments)',
      'missing 000000020000000000000006',
    ]);
    const windowed = checkStructure(entries, H2, [], MIB, { timeline: 2, from: parseLsn('0/300000') });
    expect(windowed.problems.map((p) => [p.subject, p.through])).toEqual([['000000020000000000000006', undefined]]);
    expect(windowed.scope.map((e) => e.fileName)).toEqual([
      '000000010000000000000003',
      '000000010000000000000004',
      '00000002.history',
      '000000020000000000000005',
      '000000020000000000000007',
      '000000010000000000000009',
    ]);
    expect(checkStructure([seg(1, 1), history(2)], H2, [], MIB).notes).toEqual(['timeline 2 has a history file but no segments yet']);
  });
});
