import { Option, type Command } from 'commander';
import { OPTIONS, type OptionDef, type OptionGroup } from '../config/options.js';

/** Adds the settings of the given groups (plus `general` and `observability`) as flags of `cmd`. */
export function addConfigOptions(cmd: Command, groups: readonly OptionGroup[]): Command {
  const wanted = new Set<OptionGroup>(['general', 'observability', ...groups]);
  for (const def of OPTIONS as readonly OptionDef[]) {
    if (!wanted.has(def.group)) continue;
    const flag = def.type === 'bool' ? `--${def.name} [bool]` : `--${def.name} <value>`;
    const opt = new Option(flag, `${firstSentence(def.doc)} (env ${def.env})`);
    if (def.values) opt.choices([...def.values]);
    cmd.addOption(opt);
  }
  return cmd;
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

function firstSentence(doc: string): string {
  const i = doc.search(/\.(\s+[A-Z`(]|$)/);
  return i > 0 ? doc.slice(0, i) : doc;
}
