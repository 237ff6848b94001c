import { describe, expect, it } from 'vitest';
import { inspectSegment, validateSegmentForArchive } from '../../../src/segment/inspect.js';
import { SegmentStreamCheck } from '../../../src/segment/inspect-stream.js';
import { buildSegment, MiB, writeShortHeader } from './walbuilder.js';
import { fixtureMajors, fixturesOfKind, loadFixture } from '../../support/fixtures.js';

const SEG1B = 0x1b00000n;
const NAME1B = '00000001000000000000001B';

/** The whole-buffer verdict as wal-push reaches it (push.ts describeFile): inspect, then validate. */
function whole(bytes: Uint8Array, name: string): unknown {
  try {
    const header = inspectSegment(bytes, { expectedName: name });
    return validateSegmentForArchive(bytes, name, { systemId: header.systemId, segSize: header.segSize });
  } catch (err) {
    return { error: (err as Error).constructor.name, message: (err as Error).message };
  }
}

/** The same bytes fed in pieces of the given sizes (cycled). */
function pieces(bytes: Uint8Array, name: string, sizes: readonly number[]): unknown {
  const check = new SegmentStreamCheck(name);
  for (let off = 0, i = 0; off < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    check.update(bytes.subarray(off, off + n));
    off += n;
  }
  try {
    return check.finish();
  } catch (err) {
    return { error: (err as Error).constructor.name, message: (err as Error).message };
  }
}

const SPLITS: ReadonlyArray<readonly number[]> = [[MiB * 64], [8192], [1, 39, 8000, 153, 70_001], [131_072, 4096, 7], [24, 8192 - 24]];

function corrupt(fn: (seg: Uint8Array) => void, spec: Parameters<typeof buildSegment>[0] = { start: SEG1B }): Uint8Array {
  const seg = buildSegment(spec);
  fn(seg);
  return seg;
}

const CASES: ReadonlyArray<readonly [string, Uint8Array, string]> = [
  ['a finished segment', buildSegment({ start: SEG1B }), NAME1B],
  ['an early switch (valid pages, then zeros)', buildSegment({ start: SEG1B, validPages: 66 }), NAME1B],
  ['zeros right after page 0', buildSegment({ start: SEG1B, validPages: 1 }), NAME1B],
  ['a recycled tail', buildSegment({ start: SEG1B, validPages: 18, recycledFrom: 0x1800000n }), NAME1B],
  ['data after the zeros', corrupt((s) => s.fill(0, 20 * 8192, 21 * 8192)), NAME1B],
  ['a late non-zero byte after the zeros', corrupt((s) => (s[MiB - 1] = 7), { start: SEG1B, validPages: 3 }), NAME1B],
  ['a bad magic', corrupt((s) => writeShortHeader(s, 5 * 8192, { magic: 0x1234, info: 0, tli: 1, pageAddr: SEG1B + 5n * 8192n })), NAME1B],
  [
    'a page from a later segment',
    corrupt((s) => writeShortHeader(s, 9 * 8192, { magic: 0xd110, info: 0, tli: 1, pageAddr: 0x5000000n })),
    NAME1B,
  ],
  ['a timeline going backwards', buildSegment({ start: SEG1B, tli: 3, pageTli: (p) => (p < 40 ? 3 : 2) }), '00000003000000000000001B'],
  ['a truncated segment', buildSegment({ start: SEG1B, length: MiB - 8192 }), NAME1B],
  ['a segment cut inside a page', buildSegment({ start: SEG1B, length: MiB - 8000 }), NAME1B],
  ['40 bytes', buildSegment({ start: SEG1B, length: 40 }), NAME1B],
  ['10 bytes', buildSegment({ start: SEG1B, length: 10 }), NAME1B],
  ['longer than its segment size', buildSegment({ start: SEG1B, length: MiB + 8192 }), NAME1B],
  ['a name that does not match', buildSegment({ start: SEG1B }), '00000001000000000000001C'],
  ['all zeros', new Uint8Array(MiB), NAME1B],
  ['a zero header with data behind', corrupt((s) => s.fill(0, 0, 40)), NAME1B],
  ['text', new TextEncoder().encode('#!/bin/sh\nexit 0\n'.repeat(100)), NAME1B],
  ['64kB pages', buildSegment({ start: SEG1B, blockSize: 65536, validPages: 9 }), NAME1B],
];

describe('SegmentStreamCheck gives the verdict of validateSegmentForArchive', () => {
  it.each(CASES)('%s', (_what, bytes, name) => {
    const expected = whole(bytes, name);
    for (const sizes of SPLITS) expect(pieces(bytes, name, sizes)).toEqual(expected);
  });

  it('on the real segments of every fixture major', () => {
    let checked = 0;
    for (const major of fixtureMajors()) {
      for (const f of fixturesOfKind(major, 'segment')) {
        const bytes = loadFixture(major, f.name);
        const expected = whole(bytes, f.name);
        expect(expected).toMatchObject({ segSize: bytes.length });
        for (const sizes of SPLITS) expect(pieces(bytes, f.name, sizes)).toEqual(expected);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(5);
  });
});
