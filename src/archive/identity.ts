/**
 * The archive identity record pins an archive to one cluster: PostgreSQL system identifier, major
 * version and wal_segment_size, plus the storage format version. Written on first use, stored twice
 * (a damaged or half-deleted copy never strands the archive), each copy carrying its own checksum.
 */
import { createHash } from 'node:crypto';
import { ArchiveMismatchError, IdentityLostError, IntegrityError, NotFoundError, ObjectExistsError } from '../common/errors.js';
import type { Storage } from '../storage/types.js';
import { tryClassifyWalFileName } from '../segment/names.js';
import { BACKUPS_PREFIX, HISTORY_PREFIX, IDENTITY_COPY_KEY, IDENTITY_KEY, WAL_PREFIX, parseObjectKey } from './keys.js';
import { decodeObjectHeader } from './object-header.js';

/** The command that rebuilds a lost identity from the archived WAL (named in refusals). */
const REBUILD_COMMAND = 'walvault identity-rebuild';

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

/** A damaged identity copy; `reason` is what is wrong with it, for messages that name both copies. */
class DamagedIdentityError extends IntegrityError {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`unable to read archive identity '${key}': ${reason}`);
  }
}

export function decodeIdentity(bytes: Buffer, key: string): ArchiveIdentity {
  const fail = (reason: string): never => {
    throw new DamagedIdentityError(key, reason);
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
 * copies that name different clusters (system id, major, segment size, format) mean someone mixed
 * archives, which is an integrity failure. Copies that differ only in creation time and writer are
 * a first-push race on a store without create-only writes: the primary wins (see `stale`).
 */
export async function readIdentity(storage: Storage): Promise<ArchiveIdentity | undefined> {
  const read = await readIdentityCopies(storage);
  if (!read.identity && read.damaged.length > 0) throw read.damaged[0]!;
  return read.identity;
}

export interface IdentityCopies {
  readonly identity?: ArchiveIdentity;
  readonly intactCopies: number;
  /** Copies that exist but cannot be read (each names its key and what is wrong). */
  readonly damaged: readonly DamagedIdentityError[];
  /** Raw bytes of an intact copy, to repair the other one byte for byte. */
  readonly intactBytes?: Buffer;
  readonly missing: readonly string[];
  /**
   * An intact copy that names the same cluster as the primary but differs in its creation time or
   * writer: two first pushes raced on a store without create-only writes (s3rver, older S3-compatible
   * servers), each wrote its own copy. Not a mixed archive; repaired from the primary.
   */
  readonly stale?: readonly string[];
}

/**
 * Waits before reading again when no copy is intact but one exists damaged: on a store whose writes
 * are not atomic (s3rver writes the file in place) a reader can see the first push's identity half
 * written. A torn record that stays torn is reported after these; an intact copy ends the wait.
 */
const SETTLE_DELAYS_MS = [50, 200, 500];

/** Both copies, read independently; throws only when two intact copies name different clusters (or on storage errors). */
export async function readIdentityCopies(storage: Storage): Promise<IdentityCopies> {
  let read = await readIdentityCopiesOnce(storage);
  for (const ms of SETTLE_DELAYS_MS) {
    if (read.identity || read.damaged.length === 0) break;
    await new Promise((r) => setTimeout(r, ms));
    read = await readIdentityCopiesOnce(storage);
  }
  return read;
}

async function readIdentityCopiesOnce(storage: Storage): Promise<IdentityCopies> {
  const keys = [IDENTITY_KEY, IDENTITY_COPY_KEY];
  const results = await Promise.all(keys.map((k) => readCopy(storage, k)));
  const good = results.filter((r): r is { identity: ArchiveIdentity; bytes: Buffer } => 'identity' in r);
  const damaged = results.filter((r): r is { error: DamagedIdentityError } => 'error' in r).map((r) => r.error);
  const missing = keys.filter((_k, i) => 'missing' in results[i]!);
  if (good.length === 2 && canonical(good[0]!.identity) !== canonical(good[1]!.identity)) {
    if (sameCluster(good[0]!.identity, good[1]!.identity)) {
      return { identity: good[0]!.identity, intactCopies: 1, damaged, intactBytes: good[0]!.bytes, missing, stale: [IDENTITY_COPY_KEY] };
    }
    throw new IntegrityError(
      `unable to read archive identity: '${IDENTITY_KEY}' and '${IDENTITY_COPY_KEY}' disagree ` +
        `(see '${REBUILD_COMMAND} --dry-run' for what the archived WAL says)`,
    );
  }
  if (good.length > 0) {
    return { identity: good[0]!.identity, intactCopies: good.length, damaged, intactBytes: good[0]!.bytes, missing };
  }
  return { intactCopies: 0, damaged, missing };
}

/** Everything that ties an archive to a cluster agrees; only creation time and writer may differ. */
function sameCluster(a: ArchiveIdentity, b: ArchiveIdentity): boolean {
  return a.formatVersion === b.formatVersion && a.systemId === b.systemId && a.pgMajor === b.pgMajor && a.walSegSize === b.walSegSize;
}

async function readCopy(
  storage: Storage,
  key: string,
): Promise<{ identity: ArchiveIdentity; bytes: Buffer } | { error: DamagedIdentityError } | { missing: true }> {
  try {
    const bytes = await storage.getBuffer(key);
    return { identity: decodeIdentity(bytes, key), bytes };
  } catch (err) {
    if (err instanceof NotFoundError) return { missing: true };
    if (err instanceof DamagedIdentityError) return { error: err };
    throw err;
  }
}

/**
 * The first stored object that ties the archive to a cluster, or undefined when there is none (the
 * archive may then take a fresh identity). Segments and partials always do; a `.history` or
 * `.backup` object only when its header names a system id, i.e. it was archived while an identity
 * existed: those archived into a brand-new archive before its first segment (a promoted cluster
 * archives its history file first) carry none and must not block that first segment. Anything we
 * cannot read counts, so doubt always refuses.
 */
export async function findClusterObject(storage: Storage): Promise<string | undefined> {
  for (const prefix of [WAL_PREFIX, HISTORY_PREFIX]) {
    for await (const obj of storage.list(prefix)) {
      const parts = parseObjectKey(obj.key);
      const kind = parts ? tryClassifyWalFileName(parts.fileName)?.kind : undefined;
      if (kind !== 'history' && kind !== 'backup') return obj.key;
      // History and backup files are a few hundred bytes: reading them whole is cheap.
      try {
        const header = decodeObjectHeader(await storage.getBuffer(obj.key), obj.key);
        if (!header || header.meta.systemId !== null) return obj.key;
      } catch (err) {
        if (err instanceof NotFoundError) continue; // deleted since the listing
        if (err instanceof IntegrityError) return obj.key;
        throw err;
      }
    }
  }
  // A base backup is of one cluster too (backup-push establishes the identity before it stores anything).
  for await (const obj of storage.list(BACKUPS_PREFIX)) return obj.key;
  return undefined;
}

/**
 * The identity for an operation that writes into the archive: undefined only when the archive has
 * none and holds nothing of any cluster (a new archive). An archive that holds WAL but no readable
 * identity is refused (IdentityLostError) until the identity is restored or rebuilt; damaged copies in
 * an archive without WAL stay an integrity failure (never silently replaced).
 */
export async function requireIdentity(storage: Storage, action: string): Promise<ArchiveIdentity | undefined> {
  return (await identityForWrite(storage, action)).identity;
}

async function identityForWrite(storage: Storage, action: string): Promise<IdentityCopies> {
  const read = await readIdentityCopies(storage);
  if (read.identity) return read;
  const held = await findClusterObject(storage);
  if (held !== undefined) {
    const state =
      read.damaged.length === 0
        ? `no identity record ('${IDENTITY_KEY}' and '${IDENTITY_COPY_KEY}' are both missing)`
        : `no readable identity record (${[
            ...read.damaged.map((d) => `'${d.key}': ${d.reason}`),
            ...read.missing.map((k) => `'${k}': missing`),
          ].join('; ')})`;
    throw new IdentityLostError(
      `unable to ${action}: archive '${storage.description}' holds WAL ('${held}') but ${state}; nothing was written. ` +
        `Restore '${IDENTITY_KEY}' from a backup of the archive or run '${REBUILD_COMMAND}'`,
      read.damaged.length > 0 ? { cause: read.damaged[0] } : {},
    );
  }
  if (read.damaged.length > 0) {
    const d = read.damaged[0]!;
    throw new IntegrityError(
      `unable to ${action}: archive identity '${d.key}' is damaged (${d.reason}) and the archive holds no WAL; nothing was written. ` +
        `Run '${REBUILD_COMMAND}' to set it aside so the next push creates a new one`,
      { cause: d },
    );
  }
  return read;
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
  const read = await identityForWrite(storage, `archive '${fileName}'`);
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
    if (read.intactCopies < 2) await repairCopies(storage, read);
  }
  return identity;
}

/**
 * Rewrites the missing or damaged copy from the intact one, byte for byte, so the archive keeps two.
 * Returns the keys written. Only the broken copy is written: the intact one is never touched.
 */
export async function repairCopies(storage: Storage, read: IdentityCopies): Promise<string[]> {
  if (!read.identity || !read.intactBytes || read.intactCopies >= 2) return [];
  const broken = [...read.missing, ...read.damaged.map((d) => d.key), ...(read.stale ?? [])];
  for (const key of broken) await storage.put(key, read.intactBytes);
  return broken;
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
