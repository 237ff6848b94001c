/**
 * Where a base backup lives in the archive (docs/storage-format.md, "Base backups"). Pure functions.
 *
 *   backups/<name>/started.json     written first, create-only: claims the name, says who runs it
 *   backups/<name>/heartbeat.json   rewritten while backup-push runs: tells running from abandoned
 *   backups/<name>/failed.json      written when backup-push fails with an error it could report
 *   backups/<name>/packs/<NNNNNN>   walvault objects (kind 'backup'): file contents, bundled and chunked
 *   backups/<name>/catalog          walvault object: every file, directory and link, and where its bytes are
 *   backups/<name>/backup_manifest  walvault object: PostgreSQL's own backup_manifest, byte for byte
 *   backups/<name>/backup.json      the completion record, written LAST and create-only: the backup
 *                                   exists for restore and retention only when this object does
 *
 * Everything under `backups/<name>/` that is not referenced by a backup.json is a leftover of a
 * killed or failed backup-push, removed by the next backup-push or by expire once it is abandoned.
 */
import { InvalidKeyError } from '../common/errors.js';
import { BACKUPS_PREFIX } from '../archive/keys.js';
import { isBackupName } from './names.js';

export { BACKUPS_PREFIX };
export const RECORD_LEAF = 'backup.json';
export const STARTED_LEAF = 'started.json';
export const HEARTBEAT_LEAF = 'heartbeat.json';
export const FAILED_LEAF = 'failed.json';
export const CATALOG_LEAF = 'catalog';
export const MANIFEST_LEAF = 'backup_manifest';
export const PACKS_DIR = 'packs/';

function checked(name: string): string {
  if (!isBackupName(name)) throw new InvalidKeyError(`unable to place backup '${name}' in the archive: not a backup name`);
  return name;
}

/** Prefix (with trailing slash) of every object of one backup. */
export function backupPrefix(name: string): string {
  return `${BACKUPS_PREFIX}${checked(name)}/`;
}

export const recordKey = (name: string): string => `${backupPrefix(name)}${RECORD_LEAF}`;
export const startedKey = (name: string): string => `${backupPrefix(name)}${STARTED_LEAF}`;
export const heartbeatKey = (name: string): string => `${backupPrefix(name)}${HEARTBEAT_LEAF}`;
export const failedKey = (name: string): string => `${backupPrefix(name)}${FAILED_LEAF}`;
export const catalogKey = (name: string): string => `${backupPrefix(name)}${CATALOG_LEAF}`;
export const manifestKey = (name: string): string => `${backupPrefix(name)}${MANIFEST_LEAF}`;

/** Pack numbers start at 1 and are zero-padded so a listing returns them in order. */
export function packKey(name: string, pack: number): string {
  if (!Number.isSafeInteger(pack) || pack < 1 || pack > 999_999_999) {
    throw new InvalidKeyError(`unable to place pack ${pack} of backup '${name}': pack numbers are 1..999999999`);
  }
  return `${backupPrefix(name)}${PACKS_DIR}${String(pack).padStart(9, '0')}`;
}

/** The backup name and the leaf of a key under backups/, or undefined for anything else. */
export function parseBackupKey(key: string): { name: string; leaf: string } | undefined {
  if (!key.startsWith(BACKUPS_PREFIX)) return undefined;
  const rest = key.slice(BACKUPS_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return undefined;
  const name = rest.slice(0, slash);
  if (!isBackupName(name)) return undefined;
  return { name, leaf: rest.slice(slash + 1) };
}
