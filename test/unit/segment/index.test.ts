import { describe, expect, it } from 'vitest';
import * as segment from '../../../src/segment/index.js';

describe('src/segment/index.ts', () => {
  it('re-exports one consistent API', () => {
    const lsn = segment.parseLsn('0/1B19090');
    const name = segment.SegmentName.fromLsn(2, lsn, segment.parseSegSizeSetting('1MB'));
    expect(name.name).toBe('00000002000000000000001B');
    expect(segment.classifyWalFileName(name.partialName).kind).toBe('partial');
    const history = segment.parseTimelineHistory('1\t0/1B19090\tno recovery target specified\n', 2);
    expect(segment.timelineOfSegment(history, name.segno, segment.MIN_SEG_SIZE)).toBe(2);
    expect(segment.pgMajorForMagic(0xd110)).toBe(15);
    expect(typeof segment.inspectSegment).toBe('function');
    expect(typeof segment.validateSegmentForArchive).toBe('function');
    expect(typeof segment.readLongHeader).toBe('function');
  });
});
