/**
 * Segment chaining on real WAL of PostgreSQL 13 and 15 (fixtures): consecutive segments of one
 * server chain, a timeline's first segment continues its parent's last, and a segment that does
 * not follow (a gap, or another server's WAL at the same position) is told apart.
 */
import { describe, expect, it } from 'vitest';
import { chainBreak, segmentEdges } from '../../../../src/archive/catalog/wal-chain.js';
import { loadFixture } from '../../../support/fixtures.js';

const edges = (major: number, name: string): ReturnType<typeof segmentEdges> => segmentEdges(loadFixture(major, name));

describe.each([13, 15])('PostgreSQL %i fixtures', (major) => {
  it('segment 7 ends with pg_switch_wal: 8 starts afresh and points back at the switch record', () => {
    const s7 = edges(major, '000000010000000000000007');
    const s8 = edges(major, '000000010000000000000008');
    expect(s7.outgoing).toBe(0);
    expect(s8.incoming).toBe(0);
    expect(s8.firstPrev).toBe(s7.lastStart);
    expect(chainBreak(s7, s8)).toBeUndefined();
  });

  it('segment 8 is full of records: its last one continues past its end', () => {
    const s8 = edges(major, '000000010000000000000008');
    expect(s8.outgoing).toBeGreaterThan(0);
    // Segment 9 is not in the fixtures; 0A (which starts a new record after a switch) does not continue 8.
    expect(chainBreak(s8, edges(major, '00000001000000000000000A'))).toMatch(/starts with 0 bytes of a record .* ends with \d+/);
  });

  it("timeline 2's first segment and timeline 1's last partial both continue segment 0A", () => {
    const s0a = edges(major, '00000001000000000000000A');
    expect(chainBreak(s0a, edges(major, '00000002000000000000000B'))).toBeUndefined();
    expect(chainBreak(s0a, edges(major, '00000001000000000000000B.partial'))).toBeUndefined();
  });
});

it("another server's segment 8 does not continue this server's segment 7", () => {
  const why = chainBreak(edges(15, '000000010000000000000007'), edges(13, '000000010000000000000008'));
  expect(why).toMatch(/points back to [0-9A-F]+\/[0-9A-F]+, the segment before ends with a record at [0-9A-F]+\/[0-9A-F]+/);
});
