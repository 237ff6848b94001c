/**
 * The catalogue of bad input: every shape of argument, archive location, setting, key and file we
 * could think of, run through the built launchers exactly as PostgreSQL calls them (working
 * directory = the data directory, `wal-push %p`, `wal-fetch %f %p`). Each row states the exit code
 * the README's table promises and what the one stderr line must say. For wal-fetch every row runs
 * twice: in a point-in-time recovery (no standby.signal), where anything but a proven absence must
 * stop recovery (>125), and on a standby, where it must be "try again" (3).
 *
 * The data directories are what wal-fetch reads of one (PG_VERSION, the system identifier at the
 * start of global/pg_control, standby.signal); the WAL is real PostgreSQL output (fixtures/).
 */
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureManifest, loadFixture } from '../support/fixtures.js';
import { runCli, type CliResult } from '../support/walvault.js';

const SEG = '000000010000000000000008';
const SEG7 = '000000010000000000000007';
const MISSING = '000000010000000000000009';
const HISTORY = '00000002.history';
const BACKUP = '00000001000000000000000A.00000028.backup';

const root = mkdtempSync(join(tmpdir(), 'walvault-bad-input-'));
const P = {
  archive: join(root, 'archive'),
  encrypted: join(root, 'encrypted'),
  damaged: join(root, 'damaged'),
  noIdentity: join(root, 'no-identity'),
  badIdentity: join(root, 'bad-identity'),
  empty: join(root, 'empty'),
  state: join(root, 'state'),
  noConfig: join(root, 'empty.conf'),
  pitr: join(root, 'pitr'),
  standby: join(root, 'standby'),
  foreignPitr: join(root, 'foreign-pitr'),
  keyA: join(root, 'key-a'),
  keyB: join(root, 'key-b'),
  keyWorld: join(root, 'key-world'),
  keyGroup: join(root, 'key-group'),
  keyShort: join(root, 'key-short'),
};

type Mode = 'pitr' | 'standby';
type Tool = 'wal-push' | 'wal-fetch' | 'walvault';

interface Row {
  readonly id: string;
  readonly tool: Tool;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Data directory to run in (PostgreSQL runs the commands there); default: the recovery one. */
  readonly cwd?: string;
  readonly code: number;
  /** What stderr must match; `null`: stderr must be empty. */
  readonly message: RegExp | null;
  /** Extra check after the run (e.g. the restored bytes). */
  readonly after?: (res: CliResult) => void;
}

/** One wal-fetch case, expanded into a recovery row and a standby row. */
interface FetchCase {
  readonly id: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly codes: Readonly<Record<Mode, number>>;
  readonly message: RegExp | null;
  readonly foreign?: boolean;
  readonly after?: (res: CliResult, mode: Mode) => void;
}

const archiveEnv = (dir: string): Record<string, string> => ({ WALVAULT_ARCHIVE: `file://${dir}` });
const A = archiveEnv(P.archive);
/** Files handed to wal-push live in the recovery data directory's pg_wal, as %p = pg_wal/<name>. */
const walIn = (name: string): string => `pg_wal/${name}`;
/** Exit codes of a wal-fetch failure that proves nothing: stop a recovery, retry on a standby. */
const UNPROVEN = { pitr: 128, standby: 3 } as const;
const INTEGRITY = { pitr: 128, standby: 128 } as const;

const FETCH_CASES: readonly FetchCase[] = [
  // The two answers that are allowed to be quick.
  {
    id: 'archived segment',
    args: [SEG, 'pg_wal/RECOVERYXLOG'],
    env: A,
    codes: { pitr: 0, standby: 0 },
    message: null,
    after: (_res, mode) => {
      const dest = join(mode === 'pitr' ? P.pitr : P.standby, 'pg_wal', 'RECOVERYXLOG');
      expect(readFileSync(dest).equals(loadFixture(15, SEG))).toBe(true);
      rmSync(dest);
    },
  },
  { id: 'segment not in the archive', args: [MISSING, 'pg_wal/RECOVERYXLOG'], env: A, codes: { pitr: 1, standby: 1 }, message: null },
  {
    id: 'next timeline history not in the archive',
    args: ['00000003.history', 'pg_wal/RECOVERYHISTORY'],
    env: A,
    codes: { pitr: 1, standby: 1 },
    message: null,
  },
  // Argument shapes.
  { id: 'no arguments', args: [], env: A, codes: UNPROVEN, message: /missing required argument 'name'/ },
  { id: 'missing %p', args: [MISSING], env: A, codes: UNPROVEN, message: /missing <path> \(restore_command = 'wal-fetch %f %p'\)/ },
  {
    id: '%p and %f swapped',
    args: ['pg_wal/RECOVERYXLOG', MISSING],
    env: A,
    codes: UNPROVEN,
    message: /a path, not a file name \(pass %f, not %p\)/,
  },
  { id: 'extra argument', args: [MISSING, 'pg_wal/RECOVERYXLOG', 'extra'], env: A, codes: UNPROVEN, message: /too many arguments/ },
  {
    id: '%f with a path in it',
    args: ['../../etc/passwd', 'pg_wal/RECOVERYXLOG'],
    env: A,
    codes: UNPROVEN,
    message: /WV_ERR_INVALID_NAME/,
  },
  { id: '%f not a WAL name', args: ['RECOVERYXLOG', 'pg_wal/RECOVERYXLOG'], env: A, codes: UNPROVEN, message: /WV_ERR_INVALID_NAME/ },
  {
    id: '%f in lower case',
    args: [SEG.replace('8', 'a').toLowerCase(), 'pg_wal/RECOVERYXLOG'],
    env: A,
    codes: UNPROVEN,
    message: /WV_ERR_INVALID_NAME/,
  },
  { id: 'unknown option', args: ['--bogus', MISSING, 'pg_wal/RECOVERYXLOG'], env: A, codes: UNPROVEN, message: /unknown option '--bogus'/ },
  { id: '--help with file names', args: ['--help', MISSING, 'pg_wal/RECOVERYXLOG'], env: A, codes: UNPROVEN, message: null },
  { id: '%p is a directory', args: [SEG, 'pg_wal'], env: A, codes: UNPROVEN, message: /unable to write .*pg_wal.*WV_ERR_LOCAL_IO/ },
  {
    id: '%p in a missing directory',
    args: [SEG, 'pg_wal/nodir/RECOVERYXLOG'],
    env: A,
    codes: UNPROVEN,
    message: /unable to write .*ENOENT.*WV_ERR_LOCAL_IO/,
  },
  // Archive locations that are no archive.
  {
    id: 'empty archive directory',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: archiveEnv(P.empty),
    codes: UNPROVEN,
    message: /holds no archive identity record, so it is not an archive/,
  },
  {
    id: 'archive file:// (the root)',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { WALVAULT_ARCHIVE: 'file://' },
    codes: UNPROVEN,
    message: /'file:\/\/': the file system root is not an archive directory/,
  },
  {
    id: 'archive file:///',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { WALVAULT_ARCHIVE: 'file:///' },
    codes: UNPROVEN,
    message: /file system root is not an archive directory/,
  },
  {
    id: 'archive lost its identity record',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: archiveEnv(P.noIdentity),
    codes: UNPROVEN,
    message: /holds no archive identity record/,
  },
  {
    id: 'archive identity record damaged',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: archiveEnv(P.badIdentity),
    codes: INTEGRITY,
    message: /unable to read archive identity 'archive\.info': not valid JSON/,
  },
  {
    id: 'archive directory missing',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: archiveEnv(join(root, 'nope')),
    codes: UNPROVEN,
    message: /does not exist \(create it, or mount it\)/,
  },
  {
    id: 'archive empty string',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { WALVAULT_ARCHIVE: '' },
    codes: UNPROVEN,
    message: /WALVAULT_ARCHIVE: empty value/,
  },
  { id: 'no archive configured', args: [MISSING, 'pg_wal/RECOVERYXLOG'], codes: UNPROVEN, message: /no archive configured/ },
  {
    id: 'archive unknown scheme',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { WALVAULT_ARCHIVE: 'gs://bucket/p' },
    codes: UNPROVEN,
    message: /unsupported scheme 'gs:'/,
  },
  {
    id: 'archive s3 without bucket',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { WALVAULT_ARCHIVE: 's3://' },
    codes: UNPROVEN,
    message: /'' is not a bucket name/,
  },
  {
    id: 'archive relative path',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { WALVAULT_ARCHIVE: 'archive' },
    codes: UNPROVEN,
    message: /relative paths are not allowed/,
  },
  // Settings.
  {
    id: 'unknown WALVAULT_ variable',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...A, WALVAULT_ARCHVE: 'x' },
    codes: UNPROVEN,
    message: /unknown environment variable WALVAULT_ARCHVE/,
  },
  {
    id: 'bad fetch-unavailable value',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...A, WALVAULT_FETCH_UNAVAILABLE: 'sometimes' },
    codes: UNPROVEN,
    message: /expected one of auto, abort, retry, got 'sometimes'/,
  },
  {
    id: 'bad integer value',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...A, WALVAULT_FETCH_PREFETCH: 'lots' },
    codes: UNPROVEN,
    message: /WALVAULT_FETCH_PREFETCH: expected an integer, got 'lots'/,
  },
  {
    id: 'config file missing',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...A, WALVAULT_CONFIG: join(root, 'none.conf') },
    codes: UNPROVEN,
    message: /config file '.*none\.conf': ENOENT/,
  },
  {
    id: 'config file is a directory',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...A, WALVAULT_CONFIG: root },
    codes: UNPROVEN,
    message: /config file '.*': EISDIR/,
  },
  {
    id: 'config file unknown key',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...A, WALVAULT_CONFIG: join(root, 'unknown-key.conf') },
    codes: UNPROVEN,
    message: /unknown-key\.conf:2: unknown setting 'archiv'/,
  },
  {
    id: 'config file binary junk',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...A, WALVAULT_CONFIG: join(root, 'junk.conf') },
    codes: UNPROVEN,
    message: /junk\.conf:1: expected 'name = value', got '\\x01.*'\.\.\. \(\d+ characters\)/,
  },
  // fetch-unavailable said explicitly wins over standby.signal.
  {
    id: 'empty archive, fetch-unavailable = retry',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...archiveEnv(P.empty), WALVAULT_FETCH_UNAVAILABLE: 'retry' },
    codes: { pitr: 3, standby: 3 },
    message: /no archive identity record/,
  },
  {
    id: 'empty archive, fetch-unavailable = abort',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: { ...archiveEnv(P.empty), WALVAULT_FETCH_UNAVAILABLE: 'abort' },
    codes: { pitr: 128, standby: 128 },
    message: /no archive identity record/,
  },
  {
    id: 'bad %p, --fetch-unavailable=retry flag',
    args: ['--fetch-unavailable=retry', MISSING, 'pg_wal/RECOVERYXLOG', 'extra'],
    env: A,
    codes: { pitr: 3, standby: 3 },
    message: /too many arguments/,
  },
  // Integrity: always stop, standby or not.
  {
    id: 'damaged archived object',
    args: [SEG, 'pg_wal/RECOVERYXLOG'],
    env: archiveEnv(P.damaged),
    codes: INTEGRITY,
    message: /WV_ERR_INTEGRITY/,
  },
  {
    id: 'archive of another cluster (file present)',
    args: [SEG, 'pg_wal/RECOVERYXLOG'],
    env: A,
    foreign: true,
    codes: INTEGRITY,
    message: /this cluster is 7712183650341156616.*WV_ERR_ARCHIVE_MISMATCH/,
  },
  {
    id: 'archive of another cluster (file absent)',
    args: [MISSING, 'pg_wal/RECOVERYXLOG'],
    env: A,
    foreign: true,
    codes: INTEGRITY,
    message: /the archive belongs to database system 7712183698484992009, this cluster is 7712183650341156616/,
  },
  // Encryption keys.
  {
    id: 'encrypted archive, right key',
    args: [SEG7, 'pg_wal/RECOVERYXLOG'],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: P.keyA },
    codes: { pitr: 0, standby: 0 },
    message: null,
    after: (_r, mode) => rmSync(join(mode === 'pitr' ? P.pitr : P.standby, 'pg_wal', 'RECOVERYXLOG')),
  },
  {
    id: 'encrypted archive, wrong key',
    args: [SEG7, 'pg_wal/RECOVERYXLOG'],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: P.keyB },
    codes: INTEGRITY,
    message: /encrypted with key id .*WV_ERR_CRYPTO/,
  },
  {
    id: 'encrypted archive, no key',
    args: [SEG7, 'pg_wal/RECOVERYXLOG'],
    env: archiveEnv(P.encrypted),
    codes: INTEGRITY,
    message: /WV_ERR_CRYPTO/,
  },
  {
    id: 'key file missing',
    args: [SEG7, 'pg_wal/RECOVERYXLOG'],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: join(root, 'no-key') },
    codes: UNPROVEN,
    message: /unable to read encryption key file '.*no-key': ENOENT/,
  },
  {
    id: 'key file world-readable',
    args: [SEG7, 'pg_wal/RECOVERYXLOG'],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: P.keyWorld },
    codes: UNPROVEN,
    message: /other users have access to it \(mode 0644\)/,
  },
  {
    id: 'key file wrong length',
    args: [SEG7, 'pg_wal/RECOVERYXLOG'],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: P.keyShort },
    codes: UNPROVEN,
    message: /holds 20 bytes that are neither/,
  },
];

const PUSH_ROWS: readonly Row[] = [
  // Argument shapes.
  { id: 'no argument', tool: 'wal-push', args: [], env: A, code: 2, message: /missing required argument 'path'/ },
  { id: 'extra argument', tool: 'wal-push', args: [walIn(SEG), 'extra'], env: A, code: 2, message: /too many arguments/ },
  { id: '%p and %f given', tool: 'wal-push', args: [walIn(SEG), SEG], env: A, code: 2, message: /too many arguments/ },
  {
    id: '%f instead of %p (relative, not there)',
    tool: 'wal-push',
    args: [SEG],
    env: A,
    code: 3,
    message: /unable to open WAL file .*ENOENT/,
  },
  { id: 'relative %p already archived', tool: 'wal-push', args: [walIn(SEG)], env: A, code: 0, message: null },
  { id: 'absolute %p already archived', tool: 'wal-push', args: [join(P.pitr, 'pg_wal', SEG)], env: A, code: 0, message: null },
  { id: 'not a WAL file name', tool: 'wal-push', args: [walIn('postmaster.pid')], env: A, code: 2, message: /WAL file name/ },
  {
    id: 'WAL name in lower case',
    tool: 'wal-push',
    args: [walIn('00000001000000000000000a')],
    env: A,
    code: 2,
    message: /WV_ERR_INVALID_NAME/,
  },
  { id: 'unknown option', tool: 'wal-push', args: ['--bogus', walIn(SEG)], env: A, code: 2, message: /unknown option '--bogus'/ },
  // File shapes.
  {
    id: 'missing file',
    tool: 'wal-push',
    args: [walIn('000000010000000000000020')],
    env: A,
    code: 3,
    message: /unable to open WAL file .*ENOENT/,
  },
  {
    id: 'directory instead of a file',
    tool: 'wal-push',
    args: [walIn('000000010000000000000011')],
    env: A,
    code: 3,
    message: /EISDIR|not a regular file|directory/,
  },
  { id: 'empty file', tool: 'wal-push', args: [walIn('000000010000000000000012')], env: A, code: 4, message: /WV_ERR_INVALID_WAL/ },
  { id: 'zeros', tool: 'wal-push', args: [walIn('000000010000000000000010')], env: A, code: 4, message: /zero/i },
  { id: 'truncated segment', tool: 'wal-push', args: [walIn('000000010000000000000013')], env: A, code: 4, message: /WV_ERR_INVALID_WAL/ },
  {
    id: 'segment of another cluster',
    tool: 'wal-push',
    args: [walIn(`other/${SEG}`)],
    env: A,
    code: 4,
    message: /database system 7712183650341156616.*archive belongs to 7712183698484992009/,
  },
  {
    id: 'text file named like a segment',
    tool: 'wal-push',
    args: [walIn('000000010000000000000015')],
    env: A,
    code: 4,
    message: /WV_ERR_INVALID_WAL/,
  },
  {
    id: 'garbage .history (438 bytes)',
    tool: 'wal-push',
    args: [walIn('00000003.history')],
    env: A,
    code: 4,
    message: /unable to parse timeline history '00000003.history': line 1: syntax error in '\\x01.{1,300}'\.\.\. \(\d+ characters\)/,
  },
  {
    id: 'garbage .backup',
    tool: 'wal-push',
    args: [walIn('000000010000000000000008.00000028.backup')],
    env: A,
    code: 4,
    message: /not a backup history file/,
  },
  // Archive locations.
  {
    id: 'archive empty string',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { WALVAULT_ARCHIVE: '' },
    code: 2,
    message: /WALVAULT_ARCHIVE: empty value/,
  },
  { id: 'no archive configured', tool: 'wal-push', args: [walIn(SEG)], code: 2, message: /no archive configured/ },
  {
    id: 'archive file:// (the root)',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { WALVAULT_ARCHIVE: 'file://' },
    code: 2,
    message: /file system root is not an archive directory; write file:\/\/\/absolute\/dir/,
  },
  {
    id: 'archive file:///',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { WALVAULT_ARCHIVE: 'file:///' },
    code: 2,
    message: /file system root is not an archive directory/,
  },
  {
    id: 'archive directory missing',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: archiveEnv(join(root, 'nope')),
    code: 3,
    message: /does not exist \(create it, or mount it\)/,
  },
  {
    id: 'archive unknown scheme',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { WALVAULT_ARCHIVE: 'ftp://host/wal' },
    code: 2,
    message: /unsupported scheme 'ftp:'/,
  },
  {
    id: 'archive s3 without bucket',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { WALVAULT_ARCHIVE: 's3:///prefix' },
    code: 2,
    message: /'' is not a bucket name/,
  },
  {
    id: 'archive s3 bad prefix',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { WALVAULT_ARCHIVE: 's3://bucket/a/../b' },
    code: 2,
    message: /not a usable prefix/,
  },
  {
    id: 'archive relative path',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { WALVAULT_ARCHIVE: './archive' },
    code: 2,
    message: /relative paths are not allowed/,
  },
  // Settings.
  {
    id: 'unknown WALVAULT_ variable',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { ...A, WALVAULT_ARCHVE: 'x' },
    code: 2,
    message: /unknown environment variable WALVAULT_ARCHVE/,
  },
  {
    id: 'bad integer value',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { ...A, WALVAULT_PUSH_PARALLEL: '0' },
    code: 2,
    message: /WALVAULT_PUSH_PARALLEL: must be at least 1, got 0/,
  },
  {
    id: 'bad compression',
    tool: 'wal-push',
    args: [walIn(SEG7)],
    env: { ...A, WALVAULT_COMPRESSION: 'zstd:99' },
    code: 2,
    message: /unable to parse compression 'zstd:99': zstd level must be 1\.\.19/,
  },
  {
    id: 'config file missing',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { ...A, WALVAULT_CONFIG: join(root, 'none.conf') },
    code: 2,
    message: /config file '.*none\.conf': ENOENT/,
  },
  {
    id: 'config file is a directory',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { ...A, WALVAULT_CONFIG: root },
    code: 2,
    message: /EISDIR/,
  },
  {
    id: 'config file unknown key',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { ...A, WALVAULT_CONFIG: join(root, 'unknown-key.conf') },
    code: 2,
    message: /unknown setting 'archiv'/,
  },
  {
    id: 'config file setting twice',
    tool: 'wal-push',
    args: [walIn(SEG)],
    env: { ...A, WALVAULT_CONFIG: join(root, 'twice.conf') },
    code: 2,
    message: /twice\.conf:2: 'compression' is set twice/,
  },
  // Encryption keys.
  {
    id: 'key file missing',
    tool: 'wal-push',
    args: [walIn(SEG7)],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: join(root, 'no-key') },
    code: 2,
    message: /unable to read encryption key file '.*no-key': ENOENT/,
  },
  {
    id: 'key file world-readable',
    tool: 'wal-push',
    args: [walIn(SEG7)],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: P.keyWorld },
    code: 2,
    message: /'.*key-world': other users have access to it \(mode 0644\); whoever can read it can decrypt the whole archive/,
  },
  {
    id: 'key file group-readable',
    tool: 'wal-push',
    args: [walIn(SEG7)],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: P.keyGroup },
    code: 2,
    message: /its group has access to it \(mode 0640\)/,
  },
  {
    id: 'key file group-readable, access = group',
    tool: 'wal-push',
    args: [walIn(SEG7)],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: P.keyGroup, WALVAULT_ENCRYPTION_KEY_FILE_ACCESS: 'group' },
    code: 0,
    message: null,
  },
  {
    id: 'key file wrong length',
    tool: 'wal-push',
    args: [walIn(SEG7)],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY_FILE: P.keyShort },
    code: 2,
    message: /it must hold 32 raw bytes or their base64 encoding/,
  },
  {
    id: 'key in env of wrong length',
    tool: 'wal-push',
    args: [walIn(SEG7)],
    env: { ...archiveEnv(P.encrypted), WALVAULT_ENCRYPTION_KEY: Buffer.alloc(16, 1).toString('base64') },
    code: 2,
    message: /24 base64 characters, a 32-byte key has 44/,
  },
  {
    id: 'key file and key both set',
    tool: 'wal-push',
    args: [walIn(SEG7)],
    env: {
      ...archiveEnv(P.encrypted),
      WALVAULT_ENCRYPTION_KEY_FILE: P.keyA,
      WALVAULT_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
    },
    code: 2,
    message: /set only one of encryption-key and encryption-key-file/,
  },
];

const WALVAULT_ROWS: readonly Row[] = [
  {
    id: 'unknown command',
    tool: 'walvault',
    args: ['wal-fletch'],
    code: 2,
    message: /unknown command 'wal-fletch' \(Did you mean wal-fetch\?\) \(add --help for usage\)$/,
  },
  {
    id: 'wal-fetch without the launcher, missing %p',
    tool: 'walvault',
    args: ['wal-fetch', MISSING],
    env: A,
    code: 128,
    message: /missing <path>/,
  },
  {
    id: 'wal-fetch without the launcher, standby, extra argument',
    tool: 'walvault',
    args: ['wal-fetch', MISSING, 'pg_wal/RECOVERYXLOG', 'x'],
    env: A,
    cwd: P.standby,
    code: 3,
    message: /too many arguments/,
  },
  {
    id: 'segment inspect of zeros',
    tool: 'walvault',
    args: ['segment', 'inspect', walIn('000000010000000000000010')],
    code: 128,
    message: /zero/i,
  },
  {
    id: 'segment inspect of a directory',
    tool: 'walvault',
    args: ['segment', 'inspect', walIn('000000010000000000000011')],
    code: 3,
    message: /EISDIR|directory/,
  },
  { id: 'wal-list of an empty directory', tool: 'walvault', args: ['wal-list'], env: archiveEnv(P.empty), code: 1, message: /it is empty/ },
  {
    id: 'wal-list of file://',
    tool: 'walvault',
    args: ['wal-list'],
    env: { WALVAULT_ARCHIVE: 'file://' },
    code: 2,
    message: /file system root is not an archive directory/,
  },
];

function expandFetch(c: FetchCase): Row[] {
  return (['pitr', 'standby'] as const).map((mode) => ({
    id: `${c.id} [${mode}]`,
    tool: 'wal-fetch',
    args: c.args,
    ...(c.env ? { env: c.env } : {}),
    cwd: c.foreign ? (mode === 'pitr' ? P.foreignPitr : join(root, 'foreign-standby')) : mode === 'pitr' ? P.pitr : P.standby,
    code: c.codes[mode],
    message: c.message,
    ...(c.after ? { after: (res: CliResult) => c.after!(res, mode) } : {}),
  }));
}

const ROWS: readonly Row[] = [
  ...PUSH_ROWS.map((r) => ({ ...r, id: `wal-push: ${r.id}` })),
  ...FETCH_CASES.flatMap(expandFetch).map((r) => ({ ...r, id: `wal-fetch: ${r.id}` })),
  ...WALVAULT_ROWS.map((r) => ({ ...r, id: `walvault: ${r.id}` })),
];

/** Every file under `dir` with the SHA-256 of its bytes (hidden files included). */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else
        out.push(
          `${rel}${e.name} ${createHash('sha256')
            .update(readFileSync(join(d, e.name)))
            .digest('hex')}`,
        );
    }
  };
  walk(dir, '');
  return out.sort();
}

/** A data directory as wal-fetch sees one: PG_VERSION, the system identifier, pg_wal. */
function dataDir(dir: string, systemId: string, standby: boolean): void {
  mkdirSync(join(dir, 'pg_wal'), { recursive: true });
  mkdirSync(join(dir, 'global'));
  writeFileSync(join(dir, 'PG_VERSION'), '15\n');
  const control = Buffer.alloc(8192);
  control.writeBigUInt64LE(BigInt(systemId), 0);
  writeFileSync(join(dir, 'global', 'pg_control'), control);
  if (standby) writeFileSync(join(dir, 'standby.signal'), '');
}

function keyFile(path: string, bytes: Buffer, mode: number): void {
  writeFileSync(path, bytes, { mode });
  chmodSync(path, mode);
}

/** 438 deterministic junk bytes starting with 0x01 (not a digit, not '#') and holding no newline. */
function junk(): Buffer {
  const out = Buffer.alloc(438);
  let x = 4242;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out[i] = (x >> 16) & 0xff;
  }
  out[0] = 0x01;
  return Buffer.from(out.map((b) => (b === 0x0a ? 0x0b : b)));
}

const baseEnv: Record<string, string> = {
  WALVAULT_CONFIG: P.noConfig,
  WALVAULT_STATE_DIR: P.state,
  // No detached helpers: every process this test starts ends before the row is judged.
  WALVAULT_FETCH_PREFETCH: '0',
  WALVAULT_PUSH_LOOKAHEAD: '0',
};

/** The environment of a row: only its own WALVAULT_* settings, none of the test runner's. */
function rowEnv(row: Row): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WALVAULT_')) env[k] = v;
  return { ...env, WALVAULT_NODE: process.execPath, ...baseEnv, ...(row.env ?? {}) };
}

async function push(dir: string, file: string, extra: Record<string, string> = {}): Promise<void> {
  const res = await runCli('wal-push', [file], { cwd: P.pitr, env: { ...baseEnv, ...archiveEnv(dir), ...extra } });
  if (res.code !== 0) throw new Error(`setup push of ${file} to ${dir} failed (${res.code}): ${res.stderr}`);
}

describe('bad input through the real launchers', () => {
  const before = new Map<string, string[]>();
  let wrong = 0;
  let ran = 0;

  beforeAll(async () => {
    for (const d of [P.archive, P.encrypted, P.empty, P.state]) mkdirSync(d);
    writeFileSync(P.noConfig, '# no settings\n');
    writeFileSync(join(root, 'unknown-key.conf'), `archive = file://${P.archive}\narchiv = file:///typo\n`);
    writeFileSync(join(root, 'twice.conf'), 'compression = zstd\ncompression = lz4\n');
    writeFileSync(join(root, 'junk.conf'), junk());
    const sid15 = fixtureManifest(15).systemId;
    const sid13 = fixtureManifest(13).systemId;
    dataDir(P.pitr, sid15, false);
    dataDir(P.standby, sid15, true);
    dataDir(P.foreignPitr, sid13, false);
    dataDir(join(root, 'foreign-standby'), sid13, true);
    keyFile(P.keyA, Buffer.alloc(32, 0xa1), 0o600);
    keyFile(P.keyB, Buffer.alloc(32, 0xb2), 0o600);
    keyFile(P.keyWorld, Buffer.alloc(32, 0xa1), 0o644);
    keyFile(P.keyGroup, Buffer.alloc(32, 0xa1), 0o640);
    keyFile(P.keyShort, Buffer.alloc(20, 0xa1), 0o600);

    const wal = join(P.pitr, 'pg_wal');
    const put = (name: string, bytes: Buffer | string): void => writeFileSync(join(wal, name), bytes);
    put(SEG, loadFixture(15, SEG));
    put(SEG7, loadFixture(15, SEG7));
    put(HISTORY, loadFixture(15, HISTORY));
    put(BACKUP, loadFixture(15, BACKUP));
    put('postmaster.pid', '12345\n');
    put('00000001000000000000000a', loadFixture(15, SEG));
    put('000000010000000000000010', Buffer.alloc(1024 * 1024));
    mkdirSync(join(wal, '000000010000000000000011'));
    put('000000010000000000000012', Buffer.alloc(0));
    put('000000010000000000000013', loadFixture(15, SEG).subarray(0, 300_000));
    mkdirSync(join(wal, 'other'));
    put(`other/${SEG}`, loadFixture(13, SEG));
    put('000000010000000000000015', 'hello, not WAL\n');
    put('00000003.history', junk());
    put('000000010000000000000008.00000028.backup', junk());

    // A real archive (segment, history, backup label), an encrypted one and a damaged copy.
    for (const f of [SEG, HISTORY, BACKUP]) await push(P.archive, walIn(f));
    await push(P.encrypted, walIn(SEG7), { WALVAULT_ENCRYPTION_KEY_FILE: P.keyA });
    cpSync(P.archive, P.damaged, { recursive: true });
    const segDir = join(P.damaged, 'wal', '00000001', '0000000100000000');
    const obj = join(
      segDir,
      readdirSync(segDir).find((f) => f.startsWith(`${SEG}-`))!,
    );
    const bytes = readFileSync(obj);
    bytes[bytes.length - 10]! ^= 0xff;
    writeFileSync(obj, bytes);
    cpSync(P.archive, P.noIdentity, { recursive: true });
    for (const f of ['archive.info', 'archive.info.copy']) rmSync(join(P.noIdentity, f));
    cpSync(P.archive, P.badIdentity, { recursive: true });
    for (const f of ['archive.info', 'archive.info.copy']) writeFileSync(join(P.badIdentity, f), junk());
    for (const d of [P.archive, P.encrypted, P.damaged, P.noIdentity, P.badIdentity, P.empty]) before.set(d, listing(d));
  });

  afterAll(() => {
    process.stdout.write(`bad-input: ${ran} cases, ${wrong} wrong exit codes\n`);
    rmSync(root, { recursive: true, force: true });
  });

  it('has at least 40 cases, each with a distinct name', () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(40);
    expect(new Set(ROWS.map((r) => r.id)).size).toBe(ROWS.length);
  });

  it.each(ROWS.map((r) => [r.id, r] as const))('%s', async (_id, row) => {
    const res = await runCli(row.tool, [...row.args], { cwd: row.cwd ?? P.pitr, env: rowEnv(row) });
    ran++;
    if (res.code !== row.code) wrong++;
    expect(res.code, `stderr: ${res.stderr}`).toBe(row.code);
    const lines = res.stderr.split('\n').filter((l) => l !== '');
    if (row.message === null) {
      // Success and "not in the archive" are answers, not errors: nothing for the server log.
      if (row.code === 0 || row.code === 1) expect(lines).toEqual([]);
    } else {
      expect(lines, 'one line on stderr').toHaveLength(1);
      expect(lines[0]).toMatch(row.message);
      expect(lines[0], 'printable').toMatch(/^(?:\t|[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}])*$/u);
      expect(lines[0]!.length, 'short').toBeLessThan(600);
    }
    row.after?.(res);
  });

  it('harmed nothing already archived (listings with checksums identical)', () => {
    expect(ran).toBe(ROWS.length);
    // The pushes that succeed send files the archives already hold: identical content, nothing written.
    for (const [dir, list] of before) expect(listing(dir), dir).toEqual(list);
    expect(existsSync(join(root, 'nope'))).toBe(false);
  });
});
