/**
 * Reading WAL back: find the object for a file name, download, decrypt, decompress, verify SHA-256,
 * size and cluster identity, and only then write the destination atomically. A missing file is a
 * NotInArchiveError, and only when the archive proves it is one; anything that exists but cannot be
 * proven intact is an integrity error, never "not found", so PostgreSQL cannot mistake a damaged
 * archive for its end.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { ArchiveMismatchError, IntegrityError, LocalIoError, NotInArchiveError, StorageError, describeCause } from '../common/errors.js';
import { quoteExcerpt } from '../common/quote.js';
import { codecFromExtension } from '../codec/codec.js';
import { classifyWalFileName } from '../segment/names.js';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { ArchiveContext } from '../archive/context.js';
import { decryptBuffer } from '../archive/crypto.js';
import { readIdentity } from '../archive/identity.js';
import { decodeObjectHeader, type ObjectMeta } from '../archive/object-header.js';
import { codecExtensionOf, findVersions, type StoredObject } from '../archive/versions.js';

export interface RestoredFile {
  readonly bytes: Buffer;
  readonly meta: ObjectMeta;
  readonly key: string;
  readonly storedBytes: number;
}

export interface RestoreOptions {
  readonly expectedSystemId?: string;
  /** Called once the archive is known to hold the file, before its bytes are downloaded. */
  readonly onFound?: () => void | Promise<void>;
}

export interface FetchResult {
  readonly name: string;
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
  readonly storedBytes: number;
  readonly durationMs: number;
}

/** Downloads and fully verifies one object; throws IntegrityError for anything unproven. */
export async function readObject(ctx: ArchiveContext, obj: StoredObject): Promise<RestoredFile> {
  const raw = await ctx.storage.getBuffer(obj.key, ctx.signal ? { signal: ctx.signal } : {});
  const fail = (reason: string): never => {
    throw new IntegrityError(`unable to restore '${obj.parts.fileName}' from '${obj.key}': ${reason}`);
  };
  if (raw.length !== obj.storedBytes) fail(`object is ${raw.length} bytes, the listing said ${obj.storedBytes}`);
  const header = decodeObjectHeader(raw, obj.key);
  if (!header) return fail('object is shorter than its header');
  const { meta } = header;
  if (meta.name !== obj.parts.fileName) fail(`object holds ${quoteExcerpt(meta.name)}`);
  if (meta.sha256 !== obj.parts.sha256) fail('checksum in the header differs from the one in the key');
  if ((meta.encryption !== null) !== obj.parts.encrypted) fail('encryption flag in the header differs from the key');
  let payload = raw.subarray(header.payloadOffset);
  if (payload.length !== meta.payloadBytes) {
    fail(`payload is ${payload.length} bytes, the header says ${meta.payloadBytes} (truncated or extended object)`);
  }
  if (meta.encryption) {
    payload = decryptBuffer(payload, ctx.encryption, meta.encryption.keyId, header.headerBytes, obj.key);
  }
  const codec = codecFromExtension(codecExtensionOf(obj.parts.extension), obj.key);
  if (codec.name !== meta.codec) fail(`codec ${quoteExcerpt(meta.codec)} in the header differs from the key's '${codec.name}'`);
  const bytes = await codec.decompress(payload, meta.size, obj.key);
  if (bytes.length !== meta.size) fail(`restored ${bytes.length} bytes, expected ${meta.size}`);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== meta.sha256) fail(`SHA-256 mismatch: restored ${sha256}, archived ${meta.sha256}`);
  return { bytes, meta, key: obj.key, storedBytes: raw.length };
}

/**
 * The verified bytes of `fileName`. For a `.partial` with several versions, the one holding the most
 * WAL wins. Checks that segments belong to this archive's cluster (and to `expectedSystemId`, the
 * cluster being restored, when the caller knows it).
 */
export async function restoreFile(ctx: ArchiveContext, fileName: string, opts: RestoreOptions = {}): Promise<RestoredFile> {
  const kind = classifyWalFileName(fileName).kind;
  const versions = await findVersions(ctx, fileName);
  if (versions.length === 0) throw await absenceError(ctx, fileName, opts.expectedSystemId);
  await opts.onFound?.();
  const contents = new Set(versions.map((v) => v.parts.sha256));
  if (contents.size > 1 && kind !== 'partial') {
    throw new IntegrityError(
      `unable to restore '${fileName}': the archive holds ${contents.size} different versions (${versions.map((v) => v.key).join(', ')})`,
    );
  }
  // Copies with the same checksum (e.g. stored with two codecs by racing pushes) are the same file:
  // any one that verifies will do. Distinct .partial versions are all read and the longest wins.
  const restored: RestoredFile[] = [];
  let firstError: unknown;
  for (const sha of contents) {
    for (const v of versions.filter((x) => x.parts.sha256 === sha)) {
      try {
        restored.push(await readObject(ctx, v));
        break;
      } catch (err) {
        firstError ??= err;
      }
    }
  }
  if (restored.length < contents.size) throw firstError;
  restored.sort((a, b) => (b.meta.validBytes ?? 0) - (a.meta.validBytes ?? 0));
  const best = restored[0]!;
  if (best.meta.systemId !== null) {
    ctx.identity ??= await readIdentity(ctx.storage);
    const archiveId = ctx.identity?.systemId;
    if (archiveId !== undefined && best.meta.systemId !== archiveId) {
      throw new ArchiveMismatchError(
        `unable to restore '${fileName}': it is from database system ${best.meta.systemId}, the archive belongs to ${archiveId}`,
      );
    }
    if (opts.expectedSystemId !== undefined && best.meta.systemId !== opts.expectedSystemId) {
      throw new ArchiveMismatchError(
        `unable to restore '${fileName}': it is from database system ${best.meta.systemId}, this cluster is ${opts.expectedSystemId}`,
      );
    }
  }
  return best;
}

/**
 * "Not found" is an answer PostgreSQL acts on (it ends recovery and promotes), so it is given only by
 * an archive that proves it is one: an identity record that reads back intact and, when the caller
 * knows the cluster being restored, belongs to it. An empty directory (a volume that is not mounted,
 * a wrong path) is not an archive that lacks the file; it is no archive at all.
 */
async function absenceError(ctx: ArchiveContext, fileName: string, expectedSystemId: string | undefined): Promise<Error> {
  ctx.identity ??= await readIdentity(ctx.storage);
  const identity = ctx.identity;
  if (!identity) {
    return new StorageError(
      `unable to find '${fileName}': ${ctx.storage.description} holds no archive identity record, so it is not an archive ` +
        '(wrong archive location, or a volume that is not mounted?)',
    );
  }
  if (expectedSystemId !== undefined && identity.systemId !== expectedSystemId) {
    return new ArchiveMismatchError(
      `unable to find '${fileName}': the archive belongs to database system ${identity.systemId}, this cluster is ${expectedSystemId}`,
    );
  }
  return new NotInArchiveError(`unable to find '${fileName}' in the archive`);
}

/**
 * Restores `fileName` into `destPath` atomically (temp file, rename): a reader sees no file or the
 * whole file. `durable` (the default) adds the fsyncs of the file and its directory; restore_command
 * passes false, as pgBackRest does: PostgreSQL itself fsyncs a restored file before it keeps it in
 * pg_wal (KeepFileRestoredFromArchive, durable_rename), and after a crash it asks for it again.
 */
export async function fetchFile(
  ctx: ArchiveContext,
  fileName: string,
  destPath: string,
  opts: RestoreOptions & { readonly durable?: boolean } = {},
): Promise<FetchResult> {
  const started = performance.now();
  const restored = await restoreFile(ctx, fileName, opts);
  try {
    await writeFileAtomic(destPath, restored.bytes, 0o600, { durable: opts.durable ?? true });
  } catch (err) {
    throw new LocalIoError(`unable to write '${destPath}': ${describeCause(err)}`, { cause: err, retryable: true });
  }
  const durationMs = performance.now() - started;
  ctx.log.info(
    { component: 'archive.fetch', segment: fileName, key: restored.key, bytes: restored.bytes.length, durationMs: Math.round(durationMs) },
    `restored to ${basename(destPath)}`,
  );
  return {
    name: fileName,
    key: restored.key,
    sha256: restored.meta.sha256,
    size: restored.meta.size,
    storedBytes: restored.storedBytes,
    durationMs,
  };
}
