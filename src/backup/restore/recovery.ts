/**
 * What a restored data directory needs so that `pg_ctl start` is the only step left: the archive
 * settings persisted beside it, the recovery settings in postgresql.auto.conf, and recovery.signal.
 *
 * restore_command runs in the postmaster's environment, not in the shell that ran `walvault
 * restore`: settings that came from that shell (WALVAULT_* variables, flags, a config file only root
 * can read) would be missing there. So the effective archive settings are written to
 * `<pgdata>/walvault-restore.conf` (mode 0600, owned like the data directory) and restore_command
 * points WALVAULT_CONFIG at it, with the absolute paths of this install's wal-fetch launcher and of
 * the node that ran the restore.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPTIONS, type OptionDef, type OptionGroup } from '../../config/options.js';
import type { RecoveryTarget, TargetAction, TargetTimeline } from './plan.js';

export const RESTORE_CONFIG_FILE = 'walvault-restore.conf';

/** Settings PostgreSQL reads for archive recovery; stale ones from the backed-up server are dropped. */
const RECOVERY_SETTINGS = new Set([
  'restore_command',
  'recovery_end_command',
  'recovery_target',
  'recovery_target_time',
  'recovery_target_lsn',
  'recovery_target_xid',
  'recovery_target_name',
  'recovery_target_inclusive',
  'recovery_target_timeline',
  'recovery_target_action',
]);

/** This install's wal-fetch launcher (bin/ beside dist/ or src/). */
export function walFetchLauncher(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'wal-fetch');
}

/** A word for sh -c: single quotes, with embedded ones closed and escaped. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A postgresql.conf string literal: backslashes and single quotes escaped (GUC_scanstr). */
export function confQuote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

export interface RecoverySpec {
  readonly target: RecoveryTarget;
  readonly action?: TargetAction | undefined;
  readonly timeline?: TargetTimeline | undefined;
  readonly restoreCommand: string;
}

export function restoreCommandFor(opts: { configFile: string; launcher: string; node: string; stateDir?: string | undefined }): string {
  const env = [`WALVAULT_CONFIG=${shellQuote(opts.configFile)}`, `WALVAULT_NODE=${shellQuote(opts.node)}`];
  if (opts.stateDir !== undefined) env.push(`WALVAULT_STATE_DIR=${shellQuote(opts.stateDir)}`);
  return `${env.join(' ')} ${shellQuote(opts.launcher)} %f %p`;
}

/** The recovery settings for a spec, in the order they are written. */
export function recoverySettings(spec: RecoverySpec): [string, string][] {
  const out: [string, string][] = [['restore_command', spec.restoreCommand]];
  const t = spec.target;
  if (t.kind === 'time') out.push(['recovery_target_time', t.text]);
  else if (t.kind === 'lsn') out.push(['recovery_target_lsn', t.text]);
  else if (t.kind === 'xid') out.push(['recovery_target_xid', t.xid]);
  else if (t.kind === 'name') out.push(['recovery_target_name', t.name]);
  else if (t.kind === 'immediate') out.push(['recovery_target', 'immediate']);
  if (spec.timeline !== undefined) out.push(['recovery_target_timeline', String(spec.timeline)]);
  // Without a target PostgreSQL ignores the action; write it only where it means something.
  if (t.kind !== 'latest') out.push(['recovery_target_action', spec.action ?? 'promote']);
  return out;
}

/**
 * postgresql.auto.conf with every recovery setting of `existing` removed (whatever server wrote
 * it) and ours appended; all other lines are kept as they were.
 */
export function rewriteAutoConf(existing: string, settings: readonly [string, string][], comment: string): string {
  const kept = existing.split('\n').filter((line) => {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=|\s)/.exec(line);
    return !(m && RECOVERY_SETTINGS.has(m[1]!.toLowerCase()));
  });
  while (kept.length > 0 && kept[kept.length - 1]!.trim() === '') kept.pop();
  const lines = [...kept, `# ${comment}`, ...settings.map(([k, v]) => `${k} = ${confQuote(v)}`)];
  return `${lines.join('\n')}\n`;
}

/** `name = "value"` lines for the persisted archive settings (see the file comment). */
export function restoreConfigText(settings: Readonly<Record<string, string>>, header: string): string {
  const lines = [`# ${header}`, '# Read by restore_command (wal-fetch) through WALVAULT_CONFIG; delete after recovery if unused.'];
  for (const [k, v] of Object.entries(settings)) lines.push(`${k} = "${v}"`);
  return `${lines.join('\n')}\n`;
}

export async function readAutoConf(pgdata: string): Promise<string> {
  const file = join(pgdata, 'postgresql.auto.conf');
  return existsSync(file)
    ? readFile(file, 'utf8')
    : '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n';
}

const PERSISTED_GROUPS = new Set<OptionGroup>(['storage', 's3', 'archive', 'fetch']);

/**
 * The settings wal-fetch needs to read this archive, as they are in effect now (from flags,
 * environment or a config file): every storage, S3, codec/encryption and fetch setting that is
 * not at its default. Paths to key and secret files stay paths; secrets given inline are written
 * as they are, which is why the file is 0600.
 */
export function persistedArchiveSettings(
  config: Readonly<Record<string, unknown>>,
  sources: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const def of OPTIONS as readonly OptionDef[]) {
    if (!PERSISTED_GROUPS.has(def.group)) continue;
    const value = config[def.name];
    if (value === undefined || sources[def.name] === 'default' || sources[def.name] === undefined) continue;
    out[def.name] = String(value);
  }
  return out;
}
