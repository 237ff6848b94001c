/**
 * The archive identity record pins an archive to one cluster: PostgreSQL system identifier, major
 * version and wal_segment_size, plus the storage format version. Written on first use, stored twice
 * (a damaged or half-deleted copy never strands the archive), each copy carrying its own checksum.
 */
import { createHash } from 'node:crypto';
import { ArchiveMismatchError, IntegrityError, NotFoundError, ObjectExistsError, WalvaultError } from '../common/errors.js';
import type { Storage } from '../storage/types.js';
import { IDENTITY_COPY_KEY, IDENTITY_KEY } from './keys.js';

export const STORAGE_FORMAT_VERSION = 1;

export interface ArchiveIdentity {
  readonly formatVersion: number;
  /** PostgreSQL system identifier, decimal (as pg_controldata prints it). */
  readonly systemId: string;
  readonly pgMajor: number;
  readonly walSegSize: number;
  readonly createdAt: string;
  readonly createdBy: string;
}

/** What a WAL segment header tells about its cluster. */
export interface ObservedCluster {
  readonly systemId: string;
  readonly pgMajor: number;
  readonly walSegSize: number;
}

interface StoredRecord {
  identity: ArchiveIdentity;
  sha256: string;
}

function canonical(identity: ArchiveIdentity): string {
  const { formatVersion, systemId, pgMajor, walSegSize, createdAt, createdBy } = identity;
  return JSON.stringify({ formatVersion, systemId, pgMajor, walSegSize, createdAt, createdBy });
}

export function encodeIdentity(identity: ArchiveIdentity): Buffer {
  const body = canonical(identity);
  const record: StoredRecord = { identity: JSON.parse(body) as ArchiveIdentity, sha256: sha256(body) };
  return Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
}

export function decodeIdentity(bytes: Buffer, key: string): ArchiveIdentity {
  const fail = (reason: string): never => {
    throw new IntegrityError(`unable to read archive identity '${key}': ${reason}`);
  };
  let record: StoredRecord;
  try {
    record = JSON.parse(bytes.toString('utf8')) as StoredRecord;
  } catch {
    return fail('not valid JSON');
  }
  const id = record?.identity;
  if (!id || typeof id !== 'object') return fail('no identity field');
  if (typeof id.systemId !== 'string' || !/^\d+$/.test(id.systemId)) fail('bad systemId');
  if (!Number.isInteger(id.pgMajor) || !Number.isInteger(id.walSegSize) || !Number.isInteger(id.formatVersion)) {
    fail('bad numeric field');
  }
  if (record.sha256 !== sha256(canonical(id))) fail('checksum mismatch (the record was altered or damaged)');
  if (id.formatVersion > STORAGE_FORMAT_VERSION) {
    // Not damage: a newer walvault wrote it. Refuse, and never "heal" it with an older record.
    throw new ArchiveMismatchError(
      `unable to use archive '${key}': format version ${id.formatVersion} is newer than this walvault supports (${STORAGE_FORMAT_VERSION}); upgrade walvault`,
    );
  }
  return id;
}

/**
 * Reads the identity; undefined when the archive has none yet. One intact copy is enough; two intact
 * copies that disagree mean someone mixed archives, which is an integrity failure.
 */
export async function readIdentity(storage: Storage): Promise<ArchiveIdentity | undefined> {
  return (await readIdentityCopies(storage)).identity;
}

async function readIdentityCopies(storage: Storage): Promise<{ identity?: ArchiveIdentity; intactCopies: number }> {
  const results = await Promise.all([readCopy(storage, IDENTITY_KEY), readCopy(storage, IDENTITY_COPY_KEY)]);
  const good = results.filter((r): r is { identity: ArchiveIdentity } => 'identity' in r);
  const bad = results.filter((r): r is { error: WalvaultError } => 'error' in r);
  if (good.length === 2 && canonical(good[0]!.identity) !== canonical(good[1]!.identity)) {
    throw new IntegrityError(`unable to read archive identity: '${IDENTITY_KEY}' and '${IDENTITY_COPY_KEY}' disagree`);
  }
  if (good.length > 0) return { identity: good[0]!.identity, intactCopies: good.length };
  if (bad.length > 0) throw bad[0]!.error;
  return { intactCopies: 0 };
}

async function readCopy(
  storage: Storage,
  key: string,
): Promise<{ identity: ArchiveIdentity } | { error: WalvaultError } | { missing: true }> {
  try {
    return { identity: decodeIdentity(await storage.getBuffer(key), key) };
  } catch (err) {
    if (err instanceof NotFoundError) return { missing: true };
    if (err instanceof IntegrityError) return { error: err };
    throw err;
  }
}

/**
 * Returns the archive's identity, creating it from `observed` when the archive is new, and refuses
 * WAL from another cluster or with another segment size.
 */
export async function ensureIdentity(
  storage: Storage,
  observed: ObservedCluster,
  fileName: string,
  writer: string,
): Promise<ArchiveIdentity> {
  const read = await readIdentityCopies(storage);
  let identity = read.identity;
  if (!identity) {
    const fresh: ArchiveIdentity = {
      formatVersion: STORAGE_FORMAT_VERSION,
      systemId: observed.systemId,
      pgMajor: observed.pgMajor,
      walSegSize: observed.walSegSize,
      createdAt: new Date().toISOString(),
      createdBy: writer,
    };
    const bytes = encodeIdentity(fresh);
    // Create-only for the first copy, so two first pushes racing cannot both win with different
    // identities; the loser re-reads and is checked like everyone else.
    try {
      await storage.put(IDENTITY_KEY, bytes, { ifAbsent: true });
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
    }
    identity = await readIdentity(storage);
    if (!identity) throw new IntegrityError(`unable to create archive identity '${IDENTITY_KEY}': not readable after write`);
    if (canonical(identity) === canonical(fresh)) await storage.put(IDENTITY_COPY_KEY, bytes);
    checkIdentity(identity, observed, fileName);
  } else {
    checkIdentity(identity, observed, fileName);
    if (read.intactCopies < 2) {
      // Heal a lost or damaged copy so the archive keeps two.
      const bytes = encodeIdentity(identity);
      await storage.put(IDENTITY_KEY, bytes);
      await storage.put(IDENTITY_COPY_KEY, bytes);
    }
  }
  return identity;
}

export function checkIdentity(identity: ArchiveIdentity, observed: ObservedCluster, fileName: string): void {
  const problems: string[] = [];
  if (identity.systemId !== observed.systemId) {
    problems.push(`it is from database system ${observed.systemId}, the archive belongs to ${identity.systemId}`);
  }
  if (identity.walSegSize !== observed.walSegSize) {
    problems.push(`its segment size is ${observed.walSegSize} bytes, the archive's is ${identity.walSegSize}`);
  }
  if (identity.pgMajor !== observed.pgMajor) {
    problems.push(`it is PostgreSQL ${observed.pgMajor} WAL, the archive holds PostgreSQL ${identity.pgMajor} WAL`);
  }
  if (problems.length > 0) {
    throw new ArchiveMismatchError(`unable to use '${fileName}' with this archive: ${problems.join('; ')}`);
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

