/**
 * The ONE table of settings. Parsing (flags, environment, config file), validation and
 * docs/configuration.md are all generated from it, so the documentation cannot drift from the code.
 */

export type OptionType = 'string' | 'int' | 'bool' | 'enum' | 'path' | 'url' | 'size';

export interface OptionDef {
  /** Name in the config file and the long flag (`--<name>`). */
  readonly name: string;
  readonly env: string;
  readonly type: OptionType;
  readonly doc: string;
  readonly group: OptionGroup;
  readonly default?: string | number | boolean;
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** Never printed, never logged. */
  readonly secret?: boolean;
  /** Documented as an example value when there is no default. */
  readonly example?: string;
}

export type OptionGroup = 'general' | 'storage' | 's3' | 'archive' | 'push' | 'fetch' | 'stream' | 'backup' | 'restore' | 'observability';

export const GROUP_TITLES: Record<OptionGroup, string> = {
  general: 'General',
  storage: 'Archive location',
  s3: 'S3 and S3-compatible storage',
  archive: 'Compression and encryption',
  push: 'wal-push (archive_command)',
  fetch: 'wal-fetch (restore_command)',
  stream: 'Streaming agent (walvault stream)',
  backup: 'Base backups (walvault backup-push)',
  observability: 'Logging and metrics',
  restore: 'Restoring a base backup (walvault restore)',
};

export const OPTIONS = [
  {
    name: 'config',
    env: 'WALVAULT_CONFIG',
    type: 'path',
    group: 'general',
    doc:
      'Config file with the same settings as `name = value` lines. archive_command runs with the ' +
      "postmaster's environment, not the operator's shell, so this is how its settings usually arrive. " +
      'When unset, `/etc/walvault/walvault.conf` is read if it exists.',
    example: '/etc/walvault/walvault.conf',
  },
  {
    name: 'archive',
    env: 'WALVAULT_ARCHIVE',
    type: 'url',
    group: 'storage',
    doc: 'Where the archive lives: `file:///absolute/dir` (posix) or `s3://bucket/prefix`.',
    example: 's3://my-bucket/prod-db1',
  },
  {
    name: 's3-endpoint',
    env: 'WALVAULT_S3_ENDPOINT',
    type: 'url',
    group: 's3',
    doc: 'Custom S3 endpoint for S3-compatible services (MinIO, Ceph, s3rver, ...). Unset = AWS.',
    example: 'http://127.0.0.1:9000',
  },
  {
    name: 's3-region',
    env: 'WALVAULT_S3_REGION',
    type: 'string',
    group: 's3',
    doc: 'Region. Falls back to `AWS_REGION`, then `us-east-1`.',
  },
  {
    name: 's3-force-path-style',
    env: 'WALVAULT_S3_FORCE_PATH_STYLE',
    type: 'bool',
    group: 's3',
    default: false,
    doc: 'Use path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible services.',
  },
  {
    name: 's3-checksums',
    env: 'WALVAULT_S3_CHECKSUMS',
    type: 'enum',
    group: 's3',
    values: ['default', 'when_required'],
    default: 'default',
    doc:
      '`when_required` turns off the SDK’s default streaming request/response checksums, for ' +
      'S3-compatible services that store the aws-chunked framing instead of the object (s3rver among ' +
      'them). walvault’s own SHA-256 still verifies every object.',
  },
  {
    name: 's3-storage-class',
    env: 'WALVAULT_S3_STORAGE_CLASS',
    type: 'string',
    group: 's3',
    doc: 'Storage class for uploaded objects (e.g. `STANDARD_IA`). Unset = bucket default.',
  },
  {
    name: 's3-sse',
    env: 'WALVAULT_S3_SSE',
    type: 'enum',
    group: 's3',
    values: ['none', 'AES256', 'aws:kms'],
    default: 'none',
    doc: 'Server-side encryption requested from S3.',
  },
  {
    name: 's3-sse-kms-key-id',
    env: 'WALVAULT_S3_SSE_KMS_KEY_ID',
    type: 'string',
    group: 's3',
    doc: 'KMS key id for `s3-sse = aws:kms`.',
  },
  {
    name: 's3-max-attempts',
    env: 'WALVAULT_S3_MAX_ATTEMPTS',
    type: 'int',
    group: 's3',
    default: 5,
    min: 1,
    max: 100,
    doc: 'Attempts per S3 request (throttling, 5xx and network errors are retried with backoff and jitter).',
  },
  {
    name: 's3-request-timeout',
    env: 'WALVAULT_S3_REQUEST_TIMEOUT',
    type: 'int',
    group: 's3',
    default: 60000,
    min: 100,
    doc: 'Milliseconds before one S3 request is abandoned and retried.',
  },
  {
    name: 'compression',
    env: 'WALVAULT_COMPRESSION',
    type: 'string',
    group: 'archive',
    default: 'zstd',
    doc:
      'Codec for new objects: `zstd`, `lz4`, `gzip`, `brotli` or `none`, optionally with a level ' +
      '(`zstd:3`). Reading always uses the codec recorded in the object.',
  },
  {
    name: 'encryption-key',
    env: 'WALVAULT_ENCRYPTION_KEY',
    type: 'string',
    group: 'archive',
    secret: true,
    doc: 'Base64 of a 32-byte key: turns on AES-256-GCM encryption of new objects. Never logged.',
  },
  {
    name: 'encryption-key-file',
    env: 'WALVAULT_ENCRYPTION_KEY_FILE',
    type: 'path',
    group: 'archive',
    doc: 'File holding the 32-byte key (raw, or base64 text). Preferred over `encryption-key`.',
  },
  {
    name: 'verify-record',
    env: 'WALVAULT_VERIFY_RECORD',
    type: 'string',
    group: 'archive',
    default: 'auto',
    doc:
      'Directory of the local record of objects wal-verify has checked, so later runs do not read them again ' +
      '(`auto`: `$XDG_CACHE_HOME/walvault` or `~/.cache/walvault`; `off`: no record). An object replaced, ' +
      'resized or rewritten since is checked again; `wal-verify --recheck` checks everything.',
  },
  {
    name: 'encryption-key-file-access',
    env: 'WALVAULT_ENCRYPTION_KEY_FILE_ACCESS',
    type: 'enum',
    group: 'archive',
    values: ['owner', 'group', 'any'],
    default: 'owner',
    doc:
      'Who besides its owner may have access to `encryption-key-file`. `owner`: a key file with any ' +
      'group or other permission is refused, as ssh refuses a private key (`chmod 600`). `group`: ' +
      "group access is accepted (a root-owned key with mode 640 and the server's group). `any`: no check.",
  },
  {
    name: 'push-lookahead',
    env: 'WALVAULT_PUSH_LOOKAHEAD',
    type: 'int',
    group: 'push',
    default: 64,
    min: 0,
    max: 100000,
    doc:
      'When other segments are already `.ready`, wal-push starts a detached uploader that archives ' +
      'them ahead of PostgreSQL, at most this many ahead of the archiver, until the queue has been ' +
      'empty for 5 s, so the next archive_command calls return in milliseconds. 0 turns look-ahead off.',
  },
  {
    name: 'push-parallel',
    env: 'WALVAULT_PUSH_PARALLEL',
    type: 'int',
    group: 'push',
    default: 2,
    min: 1,
    max: 64,
    doc: 'Parallel uploads of the look-ahead uploader and of `walvault daemon`.',
  },
  // Issue 14, backlog: the uploaders' compression off the main thread.
  {
    name: 'push-compress-threads',
    env: 'WALVAULT_PUSH_COMPRESS_THREADS',
    type: 'int',
    group: 'push',
    default: 1,
    min: 0,
    max: 16,
    doc:
      "zstd's own native threads per upload of the look-ahead uploader and of `walvault daemon`: " +
      'compression then overlaps checksumming, I/O and the other uploads instead of running on the ' +
      'one main thread. 0 compresses on the main thread. Other codecs ignore it; a cold wal-push ' +
      'always compresses on its own thread.',
  },
  {
    name: 'pgdata',
    env: 'WALVAULT_PGDATA',
    type: 'path',
    group: 'push',
    doc: 'Data directory whose `pg_wal/archive_status` `walvault daemon` watches. Falls back to `PGDATA`.',
    example: '/var/lib/postgresql/15/main',
  },
  {
    name: 'fetch-prefetch',
    env: 'WALVAULT_FETCH_PREFETCH',
    type: 'int',
    group: 'fetch',
    default: 8,
    min: 0,
    max: 1000,
    doc:
      'After serving a segment, wal-fetch starts a detached prefetcher that keeps this many of the ' +
      'following segments of the same timeline downloaded and verified, so the next restore_command ' +
      'calls return in milliseconds. 0 turns prefetch off.',
  },
  {
    name: 'fetch-partial',
    env: 'WALVAULT_FETCH_PARTIAL',
    type: 'bool',
    group: 'fetch',
    default: false,
    doc:
      'When a segment is not archived but a `.partial` of it is (the streaming agent archives its ' +
      'last, unfinished segment when it stops), wal-fetch serves the longest `.partial` instead, so a ' +
      'recovery reaches the last WAL the agent received. For the final recovery of a lost primary; ' +
      'leave it off on standbys that follow a live primary.',
  },
  {
    name: 'fetch-unavailable',
    env: 'WALVAULT_FETCH_UNAVAILABLE',
    type: 'enum',
    group: 'fetch',
    values: ['auto', 'abort', 'retry'],
    default: 'auto',
    doc:
      'What wal-fetch reports when the archive cannot be reached after all retries. `retry`: exit 3, ' +
      '"not available now" (a standby keeps retrying or streams from the primary). `abort`: exit ' +
      '128, PostgreSQL stops recovery (a point-in-time recovery must not end early and promote on ' +
      'a storage outage). `auto`: `retry` when `standby.signal` exists, else `abort`.',
  },
  {
    name: 'pg-conninfo',
    env: 'WALVAULT_PG_CONNINFO',
    type: 'string',
    group: 'stream',
    secret: true,
    doc:
      'Connection to the PostgreSQL server: a `postgresql://` URI or libpq `key=value` pairs ' +
      '(`sslmode` supported). Unset parts come from the standard `PGHOST`, `PGPORT`, `PGUSER`, ' +
      '`PGPASSWORD`, `PGSSLMODE` variables.',
    example: 'host=db1 port=5432 user=walvault sslmode=verify-full',
  },
  {
    name: 'slot',
    env: 'WALVAULT_SLOT',
    type: 'string',
    group: 'stream',
    doc:
      'Physical replication slot to stream from. Strongly recommended: with a slot the server keeps ' +
      'WAL until the agent has fsynced it, across disconnects and restarts.',
    example: 'walvault',
  },
  {
    name: 'create-slot',
    env: 'WALVAULT_CREATE_SLOT',
    type: 'bool',
    group: 'stream',
    default: false,
    doc: 'Create the slot if it does not exist. (A forgotten slot keeps WAL forever: drop it when retiring the agent.)',
  },
  {
    name: 'synchronous',
    env: 'WALVAULT_SYNCHRONOUS',
    type: 'bool',
    group: 'stream',
    default: false,
    doc:
      'fsync and report after every burst of WAL, so the agent can be named in ' +
      '`synchronous_standby_names` (zero data loss with `synchronous_commit = on`).',
  },
  {
    name: 'spool-dir',
    env: 'WALVAULT_SPOOL_DIR',
    type: 'path',
    group: 'stream',
    default: '/var/lib/walvault/spool',
    doc: 'Local directory for received WAL until it is archived. Must be on durable storage.',
  },
  {
    name: 'status-interval',
    env: 'WALVAULT_STATUS_INTERVAL',
    type: 'int',
    group: 'stream',
    default: 10000,
    min: 100,
    max: 3600000,
    doc: 'Milliseconds between standby status updates (each one also fsyncs the partial segment).',
  },
  {
    name: 'max-pending',
    env: 'WALVAULT_MAX_PENDING',
    type: 'int',
    group: 'stream',
    default: 16,
    min: 1,
    max: 100000,
    doc:
      'Finished segments waiting for upload before the agent stops reading from the server ' +
      '(the slot then holds the WAL on the server until storage catches up).',
  },
  {
    name: 'stream-compress-threads',
    env: 'WALVAULT_STREAM_COMPRESS_THREADS',
    type: 'int',
    group: 'stream',
    default: 1,
    min: 0,
    max: 16,
    doc:
      "zstd's own threads that compress received WAL while the agent keeps receiving (0: compress " +
      'on the receiving thread). Other codecs ignore it.',
  },
  // ---- backup (walvault backup-push) ----
  {
    name: 'backup-checkpoint',
    env: 'WALVAULT_BACKUP_CHECKPOINT',
    type: 'enum',
    group: 'backup',
    values: ['spread', 'fast'],
    default: 'spread',
    doc:
      'How the server starts the backup. `spread`: it waits for a checkpoint paced like a regular one ' +
      '(`checkpoint_completion_target`), so a backup started from cron on a busy primary causes no I/O ' +
      'spike, but copying may only begin after up to `checkpoint_timeout`; pg_basebackup and pgBackRest ' +
      'default to this too. `fast`: an immediate checkpoint, copying starts at once.',
  },
  {
    name: 'backup-label',
    env: 'WALVAULT_BACKUP_LABEL',
    type: 'string',
    group: 'backup',
    doc: 'Label of the backup (in `backup_label` and the backup record). Unset: `walvault <backup name>`.',
    example: 'nightly',
  },
  {
    name: 'backup-max-rate',
    env: 'WALVAULT_BACKUP_MAX_RATE',
    type: 'size',
    group: 'backup',
    doc:
      'Bytes per second the server may send (its `MAX_RATE`, 32 kB/s to 1 GB/s), to limit the read load ' +
      'on the server. Unset: no limit.',
    example: '100MB',
  },
  {
    name: 'backup-upload-parallel',
    env: 'WALVAULT_BACKUP_UPLOAD_PARALLEL',
    type: 'int',
    group: 'backup',
    default: 2,
    min: 1,
    max: 16,
    doc:
      'Packs (8 MiB of file content each) encoded and uploaded at once. At most 32 MiB of packs are in ' +
      'flight whatever this says: beyond that the backup stops reading from the server until uploads catch up.',
  },
  {
    name: 'backup-compress-threads',
    env: 'WALVAULT_BACKUP_COMPRESS_THREADS',
    type: 'int',
    group: 'backup',
    default: 2,
    min: 0,
    max: 16,
    doc:
      "zstd's own threads (native, not Node workers) that compress each pack while backup-push receives " +
      'the next bytes; 0 compresses on the main thread. The default 2 uses both cores of a 2-core machine; ' +
      'other codecs ignore it.',
  },
  {
    name: 'archive-timeout',
    env: 'WALVAULT_ARCHIVE_TIMEOUT',
    type: 'int',
    group: 'backup',
    default: 60,
    min: 1,
    max: 86400,
    doc:
      'Seconds backup-push waits, after the server ended the backup, for every WAL segment from the ' +
      "backup's start to its end to reach the archive (it asks the server to switch WAL when the last " +
      'one is late). Then the backup fails naming the missing segment, and is not recorded as complete.',
  },
  {
    name: 'backup-abandoned-after',
    env: 'WALVAULT_BACKUP_ABANDONED_AFTER',
    type: 'int',
    group: 'backup',
    default: 300,
    min: 1,
    max: 604800,
    doc:
      'Seconds without a heartbeat (backup-push rewrites one every 30 s) after which an unfinished ' +
      'backup counts as abandoned, and the next backup-push deletes its objects. Keep it well above 30.',
  },
  {
    name: 'metrics-port',
    env: 'WALVAULT_METRICS_PORT',
    type: 'int',
    group: 'observability',
    min: 0,
    max: 65535,
    doc: 'Serve Prometheus metrics and a JSON status on this HTTP port (`walvault stream` and `walvault daemon`). Unset = off.',
  },
  {
    name: 'metrics-host',
    env: 'WALVAULT_METRICS_HOST',
    type: 'string',
    group: 'observability',
    default: '127.0.0.1',
    doc: 'Address the metrics endpoint listens on.',
  },
  {
    name: 'log-level',
    env: 'WALVAULT_LOG_LEVEL',
    type: 'enum',
    group: 'observability',
    values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
    default: 'info',
    doc:
      'Log level; logs go to stderr. When it is not set, `wal-push`, `wal-fetch` and the report commands ' +
      '(`status`, `check`, `wal-list`, ...) use `warn`, so a successful call stays quiet in the PostgreSQL log.',
  },
  {
    name: 'log-format',
    env: 'WALVAULT_LOG_FORMAT',
    type: 'enum',
    group: 'observability',
    values: ['auto', 'text', 'json'],
    default: 'auto',
    doc:
      'Log line format. `json`: one JSON object per line (for journald, log shippers, the PostgreSQL log). ' +
      '`text`: time, level, message and fields, for people. `auto`: `text` when stderr is a terminal, else `json`. ' +
      'Secrets are redacted in both.',
  },
  // Operator settings (issue 15): S3 credentials without secrets in archive_command, and the
  // ownership-independent modes of what a posix archive creates.
  {
    name: 's3-access-key-id',
    env: 'WALVAULT_S3_ACCESS_KEY_ID',
    type: 'string',
    group: 's3',
    doc:
      'S3 access key id, used with `s3-secret-access-key-file` (both or neither). Unset = the standard ' +
      'AWS chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, instance or pod roles). ' +
      'Lets the config file carry the credentials, so nothing secret goes into archive_command.',
    example: 'AKIAIOSFODNN7EXAMPLE',
  },
  {
    name: 's3-secret-access-key-file',
    env: 'WALVAULT_S3_SECRET_ACCESS_KEY_FILE',
    type: 'path',
    group: 's3',
    doc:
      'File holding the S3 secret access key (one line). Its mode is checked like the encryption key ' +
      "file's (see `s3-secret-access-key-file-access`). The secret is never logged nor shown by `config show`.",
    example: '/etc/walvault/s3-secret',
  },
  {
    name: 's3-secret-access-key-file-access',
    env: 'WALVAULT_S3_SECRET_ACCESS_KEY_FILE_ACCESS',
    type: 'enum',
    group: 's3',
    values: ['owner', 'group', 'any'],
    default: 'owner',
    doc:
      'Who besides its owner may have access to `s3-secret-access-key-file`: `owner` (`chmod 600`), ' +
      "`group` (640, for a root-owned file and the server's group) or `any` (no check).",
  },
  {
    name: 'posix-file-mode',
    env: 'WALVAULT_POSIX_FILE_MODE',
    type: 'string',
    group: 'storage',
    default: '0600',
    doc:
      'Octal mode of the files a posix archive gets, whatever the umask. Run as root, walvault also ' +
      'gives new files and directories the owner and group of the archive root.',
  },
  {
    name: 'posix-dir-mode',
    env: 'WALVAULT_POSIX_DIR_MODE',
    type: 'string',
    group: 'storage',
    default: '0700',
    doc: 'Octal mode of the directories walvault creates in a posix archive (e.g. `0750` for a group of readers).',
  },
  // walvault restore (issue 12).
  {
    name: 'restore-parallel',
    env: 'WALVAULT_RESTORE_PARALLEL',
    type: 'int',
    group: 'restore',
    default: 4,
    min: 1,
    max: 64,
    doc:
      'Backup packs `walvault restore` downloads and writes at once (also the files it hashes at once ' +
      'for `--delta`). More helps on high-latency object storage; the local disk is the limit otherwise.',
  },
  {
    name: 'restore-buffer',
    env: 'WALVAULT_RESTORE_BUFFER',
    type: 'size',
    group: 'restore',
    default: 268435456,
    doc:
      'Most decoded pack bytes (default 256 MiB; accepts `512MB`, `1GB`) `walvault restore` holds in memory at once (a pack larger than this still ' +
      'runs, alone): with `restore-parallel` it bounds the memory of a restore whatever the database size.',
  },
] as const satisfies readonly OptionDef[];

export type OptionName = (typeof OPTIONS)[number]['name'];

export function optionByName(name: string): OptionDef | undefined {
  return (OPTIONS as readonly OptionDef[]).find((o) => o.name === name);
}

export function optionByEnv(env: string): OptionDef | undefined {
  return (OPTIONS as readonly OptionDef[]).find((o) => o.env === env);
}
