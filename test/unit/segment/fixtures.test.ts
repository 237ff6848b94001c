/**
 * inspectSegment on real WAL from each PostgreSQL major: the facts must equal what the server itself
 * reported when the fixtures were made (system identifier from SQL and, on 15, pg_controldata), and
 * damaged copies of the same bytes must give precise errors.
 */
import { describe, expect, it } from 'vitest';
import { ArchiveMismatchError, InvalidWalError } from '../../../src/common/errors.js';
import { inspectSegment, validateSegmentForArchive } from '../../../src/segment/inspect.js';
import { formatLsn, parseLsn } from '../../../src/segment/lsn.js';
import { SegmentName } from '../../../src/segment/names.js';
import { parseTimelineHistory, timelineOfLsn } from '../../../src/segment/history.js';
import { fixtureMajors, fixtureManifest, fixturesOfKind, loadFixture } from '../../support/fixtures.js';

const MAGIC: Record<number, number> = { 13: 0xd106, 14: 0xd10d, 15: 0xd110, 16: 0xd113, 17: 0xd116 };

describe.each(fixtureMajors())('real WAL from PostgreSQL %i', (major) => {
  const manifest = fixtureManifest(major);
  const walFiles = [...fixturesOfKind(major, 'segment'), ...fixturesOfKind(major, 'partial')];

  it.each(walFiles.map((f) => [f.name, f] as const))('%s: identity, timeline and start LSN', (name) => {
    const bytes = loadFixture(major, name);
    const info = inspectSegment(bytes, { expectedName: name, expectedSystemId: manifest.systemId });
    expect(info.systemId).toBe(manifest.systemId);
    if (manifest.systemIdControlData) expect(info.systemId).toBe(manifest.systemIdControlData);
    expect(info.pgMajor).toBe(major);
    expect(info.magic).toBe(MAGIC[major]);
    expect(info.segSize).toBe(manifest.walSegSize);
    expect(info.blockSize).toBe(manifest.blockSize);
    const seg = SegmentName.parse(name.slice(0, 24), manifest.walSegSize);
    expect(formatLsn(info.startLsn)).toBe(formatLsn(seg.startLsn));
    // A new timeline's first segment starts as a copy of its parent's: page 0 may carry the old TLI.
    expect(info.timeline <= seg.timeline).toBe(true);
    expect(info.lastPageTimeline).toBe(seg.timeline);
  });

  it('finished segments pass the strict pre-archive check; the .partial is valid as far as it goes', () => {
    for (const f of fixturesOfKind(major, 'segment')) {
      const info = validateSegmentForArchive(loadFixture(major, f.name), f.name, {
        systemId: manifest.systemId,
        segSize: manifest.walSegSize,
      });
      expect(info.segSize).toBe(f.size);
      // A segment ended by pg_switch_wal holds valid pages past the switch record's end.
      if (f.switchEndLsn) {
        const end = parseLsn(f.switchEndLsn) - SegmentName.parse(f.name, manifest.walSegSize).startLsn;
        expect(BigInt(info.validBytes) >= end).toBe(true);
      }
    }
    for (const f of fixturesOfKind(major, 'partial')) {
      const info = validateSegmentForArchive(loadFixture(major, f.name), f.name, {
        systemId: manifest.systemId,
        segSize: manifest.walSegSize,
      });
      const switchOffset =
        parseLsn(manifest.timelineSwitch.switchLsn) - SegmentName.parse(f.name.slice(0, 24), manifest.walSegSize).startLsn;
      expect(BigInt(info.validBytes) >= switchOffset).toBe(true);
    }
  });

  it('the archived history file says where timeline 2 began', () => {
    const [history] = fixturesOfKind(major, 'history');
    const h = parseTimelineHistory(loadFixture(major, history!.name).toString('utf8'), 2);
    expect(formatLsn(h.entries[0]!.switchpoint)).toBe(manifest.timelineSwitch.switchLsn);
    expect(timelineOfLsn(h, parseLsn(manifest.timelineSwitch.switchLsn))).toBe(2);
    expect(timelineOfLsn(h, (parseLsn(manifest.timelineSwitch.switchLsn) - 1n) as never)).toBe(1);
  });

  describe('damaged copies', () => {
    const name = fixturesOfKind(major, 'segment').find((f) => !f.switchEndLsn && f.timeline === 1)?.name ?? walFiles[0]!.name;
    const good = (): Buffer => Buffer.from(loadFixture(major, name));

    it('another cluster', () => {
      expect(() => inspectSegment(good(), { expectedSystemId: '1' })).toThrow(ArchiveMismatchError);
    });
    it('wrong magic on page 0', () => {
      const b = good();
      b.writeUInt16LE(0xbeef, 0);
      expect(() => inspectSegment(b)).toThrow(InvalidWalError);
    });
    it('a page in the middle with another magic is corruption, not the end of WAL', () => {
      const b = good();
      b.writeUInt16LE(0xbeef, 8192 * 5);
      expect(() => inspectSegment(b)).toThrow(/page at offset 40960/);
    });
    it('a page address that breaks the chain', () => {
      const b = good();
      b.writeBigUInt64LE(b.readBigUInt64LE(8192 * 3 + 8) + 8192n * 7n, 8192 * 3 + 8);
      expect(() => inspectSegment(b)).toThrow(InvalidWalError);
    });
    it('truncated: reported by inspect, refused by the pre-archive check', () => {
      const b = good().subarray(0, 300_000);
      expect(inspectSegment(b).truncated).toBe(true);
      expect(() => validateSegmentForArchive(b, name, { systemId: manifest.systemId, segSize: manifest.walSegSize })).toThrow(/truncated/);
    });
    it('zero-filled and non-WAL input', () => {
      expect(() => inspectSegment(Buffer.alloc(manifest.walSegSize))).toThrow(/zero/i);
      expect(() => inspectSegment(Buffer.from('this is a text file, not WAL at all, and long enough to have a header'))).toThrow(
        InvalidWalError,
      );
    });
    it('a name whose start LSN differs from the header', () => {
      const other = SegmentName.parse(name, manifest.walSegSize).next().name;
      expect(() => inspectSegment(good(), { expectedName: other })).toThrow(/name says the segment starts at/);
    });
  });
});
