import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, describeCause } from '../common/errors.js';
import { quoteExcerpt } from '../common/quote.js';
import { OPTIONS, optionByEnv, optionByName, type OptionDef, type OptionType } from './options.js';

type ValueOf<T extends OptionType> = T extends 'int' | 'size' ? number : T extends 'bool' ? boolean : string;
type Opt = (typeof OPTIONS)[number];

/** Every setting, typed from the options table: options with a default are always present. */
export type Config = {
  readonly [O in Opt as O['name']]: O extends { default: unknown } ? ValueOf<O['type']> : ValueOf<O['type']> | undefined;
};

export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

export interface LoadedConfig {
  readonly config: Config;
  /** Where each set value came from (for `walvault config` and error messages). */
  readonly sources: Readonly<Record<string, ConfigSource>>;
  readonly file?: string;
}

/** Environment variables that start with WALVAULT_ but are not settings (launchers, test knobs). */
const NON_OPTION_ENV = /^WALVAULT_(NODE|STATE_DIR|NO_FASTPATH|NOT_FOUND_EXIT|PG_USER|TEST_[A-Z0-9_]+|FASTPATH_[A-Z0-9_]+)$/;

const DEFAULT_CONFIG_FILE = '/etc/walvault/walvault.conf';

export interface LoadOptions {
  /** Values from command-line flags, keyed by option name; undefined = not given. */
  flags?: Readonly<Record<string, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** Overridable for tests so a machine's /etc never leaks into them. */
  defaultConfigFile?: string;
  /**
   * The command being run (`stream`, `daemon`, `wal-push`, ...): its `[<command>]` section of the
   * config file applies on top of the lines outside any section. Undefined = no section applies.
   */
  command?: string | undefined;
}

/**
 * The sections a config file may have: `[global]` (the same as no section) and one per command, so
 * that `walvault stream` and `walvault daemon` can share one file with, say, two metrics ports.
 */
export const CONFIG_SECTIONS = [
  'global',
  'wal-push',
  'wal-fetch',
  'stream',
  'daemon',
  'status',
  'check',
  'config',
  'wal-list',
  'wal-show',
  'wal-verify',
  'wal-delete',
  'wal-resolve',
  'identity-rebuild',
  'backup-push',
  'backup-list',
  'backup-show',
  'backup-verify',
  'backup-delete',
  'expire',
  'restore',
  'segment',
  'inspect',
  'restore',
] as const;

/** The section a command reads, from its path below the program (`walvault config show` reads `[config]`). */
export function sectionOfCommand(commandPath: string): string | undefined {
  return commandPath.split(' ')[1];
}

/** Settings precedence: defaults < config file < WALVAULT_* environment < command-line flags. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const sources: Record<string, ConfigSource> = {};

  for (const def of OPTIONS as readonly OptionDef[]) {
    if (def.default !== undefined) {
      values[def.name] = def.default;
      sources[def.name] = 'default';
    }
  }

  const set = (def: OptionDef, raw: unknown, source: ConfigSource, where: string): void => {
    try {
      values[def.name] = coerce(def, raw);
      sources[def.name] = source;
    } catch (err) {
      problems.push(`${where}: ${describeCause(err)}`);
    }
  };

  const explicitFile = (flags['config'] as string | undefined) ?? env['WALVAULT_CONFIG'];
  const defaultFile = opts.defaultConfigFile ?? DEFAULT_CONFIG_FILE;
  const file = explicitFile ?? (existsSync(defaultFile) ? defaultFile : undefined);
  if (file !== undefined) {
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`config file '${file}': ${describeCause(err)}`);
    }
    if (text !== undefined) {
      const entries = parseConfigFile(text, file, problems);
      // Lines outside any section first, then the command's own section on top of them.
      const ordered = [...entries.filter((e) => e.section === 'global'), ...entries.filter((e) => e.section !== 'global')];
      for (const entry of ordered) {
        const def = optionByName(entry.name);
        if (!def || def.name === 'config') {
          problems.push(`${file}:${entry.line}: unknown setting ${quoteExcerpt(entry.name)}`);
          continue;
        }
        // Another command's section: checked (a typo is an error everywhere), not applied.
        if (entry.section !== 'global' && entry.section !== opts.command) {
          try {
            coerce(def, entry.value);
          } catch (err) {
            problems.push(`${file}:${entry.line}: [${entry.section}] ${def.name}: ${describeCause(err)}`);
          }
          continue;
        }
        set(def, entry.value, 'file', `${file}:${entry.line}: ${entry.section === 'global' ? '' : `[${entry.section}] `}${def.name}`);
      }
    }
  }

  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('WALVAULT_') || raw === undefined || NON_OPTION_ENV.test(name)) continue;
    const def = optionByEnv(name);
    if (!def) {
      problems.push(`unknown environment variable ${name}`);
      continue;
    }
    set(def, raw, 'env', name);
  }

  for (const [name, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    const def = optionByName(name);
    if (!def) {
      problems.push(`unknown option --${name}`);
      continue;
    }
    set(def, raw, 'flag', `--${name}`);
  }

  if (values['encryption-key'] !== undefined && values['encryption-key-file'] !== undefined) {
    problems.push('set only one of encryption-key and encryption-key-file');
  }

  if (problems.length > 0) {
    throw new ConfigError(`unable to load configuration: ${problems.join('; ')}`);
  }
  return { config: values as Config, sources, ...(file !== undefined ? { file } : {}) };
}

interface FileEntry {
  name: string;
  value: string;
  line: number;
  /** `global` for lines before any `[section]` header. */
  section: string;
}

/**
 * `name = value` lines; `#` starts a comment line; values may be double-quoted; `[section]` headers
 * (see CONFIG_SECTIONS) scope the lines after them to one command.
 */
function parseConfigFile(text: string, file: string, problems: string[]): FileEntry[] {
  const entries: FileEntry[] = [];
  const seen = new Set<string>();
  let section = 'global';
  text.split(/\r?\n/).forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) return;
    const header = /^\[\s*([^\]]*?)\s*\]$/.exec(line);
    if (header) {
      if (!(CONFIG_SECTIONS as readonly string[]).includes(header[1]!)) {
        problems.push(
          `${file}:${i + 1}: unknown section ${quoteExcerpt(line)} (expected one of ${CONFIG_SECTIONS.map((c) => `[${c}]`).join(', ')})`,
        );
      }
      section = header[1]!;
      return;
    }
    const m = /^([a-z0-9-]+)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      problems.push(`${file}:${i + 1}: expected 'name = value', got ${quoteExcerpt(line)}`);
      return;
    }
    const name = m[1]!;
    let value = m[2]!;
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    const key = `${section}\0${name}`;
    if (seen.has(key)) {
      problems.push(`${file}:${i + 1}: '${name}' is set twice${section === 'global' ? '' : ` in [${section}]`}`);
      return;
    }
    seen.add(key);
    entries.push({ name, value, line: i + 1, section });
  });
  return entries;
}

function coerce(def: OptionDef, raw: unknown): string | number | boolean {
  if (def.type === 'bool') {
    if (typeof raw === 'boolean') return raw;
    const s = String(raw).trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(s)) return true;
    if (['false', 'no', 'off', '0'].includes(s)) return false;
    throw new Error(`expected true or false, got ${quoteExcerpt(String(raw))}`);
  }
  const s = typeof raw === 'string' ? raw.trim() : String(raw);
  if (s === '') throw new Error('empty value');
  switch (def.type) {
    case 'int': {
      if (!/^-?\d+$/.test(s)) throw new Error(`expected an integer, got ${quoteExcerpt(s)}`);
      const n = Number(s);
      if (def.min !== undefined && n < def.min) throw new Error(`must be at least ${def.min}, got ${n}`);
      if (def.max !== undefined && n > def.max) throw new Error(`must be at most ${def.max}, got ${n}`);
      return n;
    }
    case 'size':
      return parseSize(s);
    case 'enum':
      if (!def.values?.includes(s)) throw new Error(`expected one of ${def.values?.join(', ')}, got ${quoteExcerpt(s)}`);
      return s;
    default:
      return s;
  }
}

/** `64MB`, `1GB`, `512kB` or plain bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+)\s*(B|kB|KB|MB|GB|TB)?$/.exec(s);
  if (!m) throw new Error(`expected a size such as 64MB, got ${quoteExcerpt(s)}`);
  const mult: Record<string, number> = { B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
  return Number(m[1]) * (mult[m[2] ?? 'B'] ?? 1);
}
