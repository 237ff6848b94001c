/**
 * The committed real-WAL fixtures are intact and are what their manifests say. Checked against
 * PostgreSQL's documented on-disk layout (xlog_internal.h), not against src/segment.
 */
import { describe, expect, it } from 'vitest';
import {
  checkFixtureBytes,
  fixtureMajors,
  fixtureManifest,
  loadFixture,
  type FixtureFile,
  type FixtureManifest,
} from '../support/fixtures.js';

/** XLOG_PAGE_MAGIC per major (src/include/access/xlog_internal.h). */
const PAGE_MAGIC: Record<number, number> = { 13: 0xd106, 14: 0xd10d, 15: 0xd110, 16: 0xd113, 17: 0xd116, 18: 0xd118 };
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
/** MAXALIGN(sizeof(XLogLongPageHeaderData)) on 64-bit builds. */
const LONG_HEADER_SIZE = 40;

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

function lsnOf(text: string): bigint {
  const m = /^([0-9A-F]{1,8})\/([0-9A-F]{1,8})$/.exec(text);
  if (!m?.[1] || !m[2]) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** First byte position of a segment file, from its name: (log * 2^32) + seg * segment size. */
function segmentStart(name: string, segSize: number): bigint {
  const m = SEGMENT_NAME.exec(name.replace(/\.partial$/, ''));
  if (!m?.[2] || !m[3]) throw new Error(`not a segment name: ${name}`);
  return (BigInt(`0x${m[2]}`) << 32n) + BigInt(`0x${m[3]}`) * BigInt(segSize);
}

/** The position up to which PostgreSQL said this file holds valid WAL. */
function knownEnd(m: FixtureManifest, f: FixtureFile): bigint {
  const start = segmentStart(f.name, m.walSegSize);
  if (f.switchEndLsn) return lsnOf(f.switchEndLsn);
  if (f.kind === 'partial') return lsnOf(m.timelineSwitch.switchLsn);
  if (f.name === m.backup.stopWalFile) return lsnOf(m.backup.stopLsn);
  if (f.note.startsWith('completely filled')) return start + BigInt(m.walSegSize);
  throw new Error(`no known end for ${f.name}`);
}

const majors = fixtureMajors();

describe('WAL fixtures', () => {
  it('cover PostgreSQL 15 and at least two other majors', () => {
    expect(majors).toContain(15);
    expect(majors.length).toBeGreaterThanOrEqual(3);
  });

  it('detect damaged bytes', () => {
    const m = fixtureManifest(majors[0] as number);
    const entry = m.files[0] as FixtureFile;
    const bytes = Buffer.from(loadFixture(m.major, entry.name));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
    expect(() => checkFixtureBytes(bytes, entry)).toThrow(/sha256/);
    expect(() => checkFixtureBytes(bytes.subarray(1), entry)).toThrow(/bytes/);
  });
});

describe.each(majors)('PostgreSQL %i WAL fixtures', (major) => {
  const m = fixtureManifest(major);

  it('describe a cluster with small segments', () => {
    expect(m.major).toBe(major);
    expect(Number(m.version.split('.')[0])).toBe(major);
    expect(m.systemId).toMatch(/^\d{15,20}$/);
    if (m.systemIdControlData !== undefined) expect(m.systemIdControlData).toBe(m.systemId);
    expect(m.walSegSize).toBe(1024 * 1024);
    expect(m.blockSize).toBe(8192);
    const kinds = new Set(m.files.map((f) => f.kind));
    expect([...kinds].sort()).toEqual(['backup', 'history', 'partial', 'segment']);
  });

  it.each(m.files.map((f) => [f.name, f] as const))('%s matches its checksum, name and kind', (name, f) => {
    const bytes = loadFixture(major, name);
    expect(bytes.length).toBe(f.size);
    expect(f.timeline).toBe(parseInt(name.slice(0, 8), 16));
    const pattern = {
      segment: /^[0-9A-F]{24}$/,
      partial: /^[0-9A-F]{24}\.partial$/,
      history: /^[0-9A-F]{8}\.history$/,
      backup: /^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/,
    }[f.kind];
    expect(name).toMatch(pattern);
    if (f.kind === 'segment' || f.kind === 'partial') expect(f.size).toBe(m.walSegSize);
  });

  const walFiles = m.files.filter((f) => f.kind === 'segment' || f.kind === 'partial');

  it.each(walFiles.map((f) => [f.name, f] as const))('%s has valid page headers up to its known end', (name, f) => {
    const bytes = loadFixture(major, name);
    const start = segmentStart(name, m.walSegSize);
    // First page: long header identifying cluster, segment size and block size.
    expect(bytes.readUInt16LE(0)).toBe(PAGE_MAGIC[major]);
    expect(bytes.readUInt16LE(2) & XLP_LONG_HEADER).toBe(XLP_LONG_HEADER);
    expect(bytes.readUInt32LE(4)).toBeLessThanOrEqual(f.timeline);
    expect(bytes.readBigUInt64LE(8)).toBe(start);
    expect(bytes.readBigUInt64LE(24).toString()).toBe(m.systemId);
    expect(bytes.readUInt32LE(32)).toBe(m.walSegSize);
    expect(bytes.readUInt32LE(36)).toBe(m.blockSize);
    const end = knownEnd(m, f);
    expect(end > start && end <= start + BigInt(m.walSegSize)).toBe(true);
    for (let off = 0; start + BigInt(off) < end; off += m.blockSize) {
      expect(bytes.readUInt16LE(off), `magic at page offset ${off}`).toBe(PAGE_MAGIC[major]);
      expect(bytes.readBigUInt64LE(off + 8), `xlp_pageaddr at offset ${off}`).toBe(start + BigInt(off));
    }
    if (f.pgWaldump) {
      const remLen = bytes.readUInt32LE(16);
      const contrecord = (bytes.readUInt16LE(2) & XLP_FIRST_IS_CONTRECORD) !== 0;
      if (!contrecord) expect(lsnOf(f.pgWaldump.firstRecordLsn)).toBe(start + BigInt(LONG_HEADER_SIZE));
      else if (remLen < m.blockSize - LONG_HEADER_SIZE) {
        expect(lsnOf(f.pgWaldump.firstRecordLsn)).toBe(start + BigInt(LONG_HEADER_SIZE + Math.ceil(remLen / 8) * 8));
      }
      const bound = f.switchEndLsn ? lsnOf(f.switchEndLsn) : start + BigInt(m.walSegSize);
      expect(lsnOf(f.pgWaldump.lastRecordLsn) < bound).toBe(true);
    }
  });

  it('hold a timeline switch: history, partial and the new timeline continuing the same segment', () => {
    const history = loadFixture(major, '00000002.history').toString('utf8');
    const lines = history.trim().split('\n');
    expect(lines).toHaveLength(1);
    const [parent, switchLsn, reason] = (lines[0] as string).split('\t');
    expect(parent).toBe('1');
    expect(switchLsn).toBe(m.timelineSwitch.switchLsn);
    expect(reason).toBe('no recovery target specified');
    const partial = m.files.find((f) => f.kind === 'partial') as FixtureFile;
    const partialStart = segmentStart(partial.name, m.walSegSize);
    const at = lsnOf(m.timelineSwitch.switchLsn);
    expect(at > partialStart && at < partialStart + BigInt(m.walSegSize)).toBe(true);
    const continued = `00000002${partial.name.slice(8, 24)}`;
    expect(m.files.map((f) => f.name)).toContain(continued);
    // Up to the switch point the new timeline's segment repeats the old one byte for byte.
    const upTo = Number(at - partialStart);
    expect(loadFixture(major, continued).subarray(0, upTo).equals(loadFixture(major, partial.name).subarray(0, upTo))).toBe(true);
  });

  it('hold a backup history file matching the backup PostgreSQL reported', () => {
    const b = m.backup;
    const start = lsnOf(b.startLsn);
    const offset = (start % BigInt(m.walSegSize)).toString(16).toUpperCase().padStart(8, '0');
    const name = `${b.startWalFile}.${offset}.backup`;
    const text = loadFixture(major, name).toString('utf8');
    expect(text).toContain(`START WAL LOCATION: ${b.startLsn} (file ${b.startWalFile})`);
    expect(text).toContain(`STOP WAL LOCATION: ${b.stopLsn} (file ${b.stopWalFile})`);
    expect(text).toContain(`LABEL: ${b.label}`);
    expect(segmentStart(b.startWalFile, m.walSegSize)).toBe(start - (start % BigInt(m.walSegSize)));
  });
});
