import { Option, type Command } from 'commander';
import { OPTIONS, type OptionDef, type OptionGroup } from '../config/options.js';

/**
 * Settings every command shares (where the archive is, S3, codec and key, config file, logging).
 * Each command accepts them, but they are listed once, in `walvault help options`, instead of thirty
 * lines repeated in every command's help.
 */
export const SHARED_GROUPS: readonly OptionGroup[] = ['general', 'storage', 's3', 'archive', 'observability'];

export const SHARED_OPTIONS_HINT =
  'Settings shared by every command (archive, S3, compression, encryption, config file, logging):\n' + '  walvault help options';

/**
 * Adds the settings of the given groups (plus `general` and `observability`) as flags of `cmd`.
 * The command's own settings (groups not in SHARED_GROUPS) are shown in its help with their full
 * description, default and environment variable; the shared ones are accepted but not repeated.
 */
export function addConfigOptions(
  cmd: Command,
  groups: readonly OptionGroup[],
  help: {
    /** Shared settings that matter to this command in particular (metrics-port for the agents). */ alsoShow?: readonly string[];
    hideAll?: boolean;
  } = {},
): Command {
  const wanted = new Set<OptionGroup>(['general', 'observability', ...groups]);
  for (const def of OPTIONS as readonly OptionDef[]) {
    if (!wanted.has(def.group)) continue;
    const opt = configOption(def);
    const shown = !help.hideAll && (!SHARED_GROUPS.includes(def.group) || (help.alsoShow ?? []).includes(def.name));
    if (!shown) opt.hideHelp();
    cmd.addOption(opt);
  }
  cmd.addHelpText('after', `\n${SHARED_OPTIONS_HINT}`);
  return cmd;
}

/** One setting as a flag; no commander default, so an unset flag never hides the file or environment. */
function configOption(def: OptionDef): Option {
  const flag = def.type === 'bool' ? `--${def.name} [bool]` : `--${def.name} <value>`;
  return new Option(flag, optionHelp(def));
}

/** The full description (never cut at a sentence), then default or example, then the variable. */
export function optionHelp(def: OptionDef): string {
  const facts: string[] = [];
  if (def.values) facts.push(`one of: ${def.values.join(', ')}`);
  if (def.default !== undefined) facts.push(`default: ${String(def.default)}`);
  else if (def.example !== undefined) facts.push(`e.g. ${def.example}`);
  facts.push(`env ${def.env}`);
  return `${def.doc} (${facts.join('; ')})`;
}

/** Picks the config settings out of commander's parsed options (camelCase) by option name. */
export function configFlags(parsed: Record<string, unknown>): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (const def of OPTIONS as readonly OptionDef[]) {
    const attr = def.name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    const v = parsed[attr];
    if (v !== undefined) flags[def.name] = v === true && def.type === 'bool' ? true : v;
  }
  return flags;
}
