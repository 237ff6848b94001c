/**
 * Claims: one small object per WAL file name (`<file>.claim`, see keys.ts), written create-only
 * before the data object and naming the SHA-256 of the content it is for. Object keys carry the
 * checksum, so create-only on the data object only stops a second copy of the *same* content; the
 * claim is what makes "one content per name" hold when two pushes of different files race: the
 * storage lets exactly one create-only write of the claim succeed (link(2) on posix,
 * `If-None-Match: *` on S3), and every push reads the claim back and only goes on when it names its
 * own content. `.partial` files get no claim: their versions legitimately differ.
 */
import { hostname } from 'node:os';
import { IntegrityError, NotFoundError, ObjectExistsError, StorageError } from '../common/errors.js';
import type { Storage } from '../storage/types.js';
import { claimKey } from './keys.js';

const CLAIM_FORMAT_VERSION = 1;

export interface ClaimRecord {
  readonly claim: typeof CLAIM_FORMAT_VERSION;
  readonly name: string;
  /** SHA-256 (hex) of the original bytes this name is promised to. */
  readonly sha256: string;
  readonly size: number;
  readonly writer: string;
  readonly host: string;
  readonly pid: number;
  readonly createdAt: string;
}

export function newClaim(name: string, sha256: string, size: number, writer: string): ClaimRecord {
  return {
    claim: CLAIM_FORMAT_VERSION,
    name,
    sha256,
    size,
    writer,
    host: hostname(),
    pid: process.pid,
    createdAt: new Date().toISOString(),
  };
}

export function encodeClaim(c: ClaimRecord): Buffer {
  return Buffer.from(`${JSON.stringify(c)}\n`, 'utf8');
}

/**
 * A claim whose bytes are not JSON at all (empty or cut short): what a create-only write leaves when
 * the store's PUT is not atomic and the server dies mid-request (s3rver does this; AWS S3, RGW and
 * posix link(2) never do). Valid JSON that is wrong is not torn: something else wrote it.
 */
export class TornClaimError extends IntegrityError {}

function decodeClaim(bytes: Buffer, fileName: string): ClaimRecord {
  const fail = (reason: string): never => {
    throw new IntegrityError(`unable to read the claim '${claimKey(fileName)}': ${reason}`);
  };
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new TornClaimError(`unable to read the claim '${claimKey(fileName)}': not valid JSON (${bytes.length} bytes)`);
  }
  if (typeof v !== 'object' || v === null) return fail('not an object');
  const o = v as Record<string, unknown>;
  if (o['claim'] !== CLAIM_FORMAT_VERSION) fail(`unsupported claim format ${String(o['claim'])}`);
  if (o['name'] !== fileName) fail(`it is for '${String(o['name'])}'`);
  if (typeof o['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(o['sha256'])) fail('no valid sha256');
  const str = (k: string): string => (typeof o[k] === 'string' ? (o[k] as string) : '');
  const num = (k: string): number => (typeof o[k] === 'number' ? (o[k] as number) : 0);
  return {
    claim: CLAIM_FORMAT_VERSION,
    name: fileName,
    sha256: o['sha256'] as string,
    size: num('size'),
    writer: str('writer'),
    host: str('host'),
    pid: num('pid'),
    createdAt: str('createdAt'),
  };
}

/** The claim of `fileName`, or undefined when there is none. IntegrityError for an unreadable one. */
export async function readClaim(storage: Storage, fileName: string, signal?: AbortSignal): Promise<ClaimRecord | undefined> {
  try {
    return decodeClaim(await storage.getBuffer(claimKey(fileName), signal ? { signal } : {}), fileName);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/**
 * Claims `fileName` for `claim.sha256` unless someone claimed it first, and returns the claim that
 * holds afterwards, read back from storage: on a store that ignores create-only writes the last
 * writer wins, and reading back lets every loser but the slowest see that before it uploads.
 */
export async function claimName(
  storage: Storage,
  claim: ClaimRecord,
  signal?: AbortSignal,
  /** Called instead of failing when the claim is torn and the caller knows no data is stored under the name. */
  onTorn?: (err: TornClaimError) => void,
): Promise<ClaimRecord> {
  const key = claimKey(claim.name);
  const opts = signal ? { signal } : {};
  try {
    await storage.put(key, encodeClaim(claim), { ifAbsent: true, ...opts });
  } catch (err) {
    if (!(err instanceof ObjectExistsError)) throw err;
  }
  let holding: ClaimRecord | undefined;
  try {
    holding = await readClaim(storage, claim.name, signal);
  } catch (err) {
    if (!(onTorn && err instanceof TornClaimError)) throw err;
    // A torn claim guards nothing (no data was stored under the name), so it is written over and read
    // back like any claim. Two pushes of different files doing this at once are still caught after
    // the upload by the push's check that its version is the only one.
    onTorn(err);
    await storage.put(key, encodeClaim(claim), opts);
    holding = await readClaim(storage, claim.name, signal);
  }
  if (!holding)
    throw new StorageError(`unable to claim '${claim.name}': the claim '${key}' is not visible after writing it`, { retryable: true });
  return holding;
}

/** Replaces the claim (operator resolution only: pushes never overwrite a claim). */
export async function replaceClaim(storage: Storage, claim: ClaimRecord): Promise<void> {
  await storage.put(claimKey(claim.name), encodeClaim(claim));
}
