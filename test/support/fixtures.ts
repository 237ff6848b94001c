/**
 * Real WAL made by real PostgreSQL servers (fixtures/generate.mjs), stored zstd-compressed with a
 * manifest of facts PostgreSQL reported. Every load checks the bytes against the manifest's
 * SHA-256 first, so a damaged fixture fails loudly instead of testing the wrong thing.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decompress } from 'zstd-napi';

export const FIXTURE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'wal');

export type FixtureKind = 'segment' | 'partial' | 'history' | 'backup';

export interface FixtureFile {
  name: string;
  kind: FixtureKind;
  timeline: number;
  /** SHA-256 (hex) of the uncompressed bytes. */
  sha256: string;
  /** Uncompressed size in bytes. */
  size: number;
  compressedSize: number;
  /** How the file came to be. */
  note: string;
  /** For segments closed by pg_switch_wal(): the LSN it returned (end of the switch record). */
  switchEndLsn?: string;
  /** PostgreSQL 15 only: what pg_waldump decoded from this file alone (LSNs of record starts). */
  pgWaldump?: { records: number; firstRecordLsn: string; lastRecordLsn: string };
}

export interface FixtureManifest {
  major: number;
  version: string;
  /** From `SELECT system_identifier FROM pg_control_system()`. */
  systemId: string;
  /** From pg_controldata, where the client tools exist (PostgreSQL 15). */
  systemIdControlData?: string;
  walSegSize: number;
  blockSize: number;
  generatedAt: string;
  backup: { label: string; startLsn: string; stopLsn: string; startWalFile: string; stopWalFile: string };
  timelineSwitch: { from: number; to: number; switchLsn: string; firstLsnAfterPromotion: string };
  files: FixtureFile[];
}

const manifests = new Map<number, FixtureManifest>();

/** Majors that have fixtures, ascending. */
export function fixtureMajors(): number[] {
  if (!existsSync(FIXTURE_ROOT)) return [];
  return readdirSync(FIXTURE_ROOT)
    .map((d) => /^pg(\d+)$/.exec(d)?.[1])
    .filter((m): m is string => m !== undefined && existsSync(path.join(FIXTURE_ROOT, `pg${m}`, 'manifest.json')))
    .map(Number)
    .sort((a, b) => a - b);
}

export function fixtureManifest(major: number): FixtureManifest {
  const cached = manifests.get(major);
  if (cached) return cached;
  const file = path.join(FIXTURE_ROOT, `pg${major}`, 'manifest.json');
  if (!existsSync(file)) throw new Error(`no WAL fixtures for PostgreSQL ${major} (${file}); see fixtures/wal/README.md`);
  const manifest = JSON.parse(readFileSync(file, 'utf8')) as FixtureManifest;
  manifests.set(major, manifest);
  return manifest;
}

export function fixtureEntry(major: number, name: string): FixtureFile {
  const entry = fixtureManifest(major).files.find((f) => f.name === name);
  if (!entry) throw new Error(`no fixture '${name}' for PostgreSQL ${major}`);
  return entry;
}

/** Throws unless `bytes` are exactly what the manifest recorded. */
export function checkFixtureBytes(bytes: Buffer, entry: FixtureFile): void {
  if (bytes.length !== entry.size) throw new Error(`fixture '${entry.name}': ${bytes.length} bytes, manifest says ${entry.size}`);
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== entry.sha256) throw new Error(`fixture '${entry.name}': sha256 ${digest}, manifest says ${entry.sha256}`);
}

/** The uncompressed, checksum-verified bytes of one fixture file. */
export function loadFixture(major: number, name: string): Buffer {
  const entry = fixtureEntry(major, name);
  const bytes = decompress(readFileSync(path.join(FIXTURE_ROOT, `pg${major}`, `${name}.zst`)));
  checkFixtureBytes(bytes, entry);
  return bytes;
}

/** Fixture entries of one kind, in name order. */
export function fixturesOfKind(major: number, kind: FixtureKind): FixtureFile[] {
  return fixtureManifest(major).files.filter((f) => f.kind === kind);
}
