import type { Command } from 'commander';
import { GROUP_TITLES, OPTIONS, type OptionDef } from '../config/options.js';
import { SHARED_GROUPS, SHARED_OPTIONS_HINT, optionHelp } from './options.js';

/** One example per command, shown at the end of its help. */
const EXAMPLES: Record<string, string> = {
  'wal-push': "walvault wal-push pg_wal/000000010000000000000003   # archive_command = 'wal-push %p'",
  'wal-fetch': "walvault wal-fetch 000000010000000000000003 pg_wal/RECOVERYXLOG   # restore_command = 'wal-fetch %f %p'",
  stream: "walvault stream --pg-conninfo 'host=db1 user=walvault' --slot walvault --create-slot --metrics-port 9187",
  daemon: 'walvault daemon --pgdata /var/lib/postgresql/15/main --metrics-port 9188',
  'segment inspect': 'walvault segment inspect pg_wal/000000010000000000000003',
  'config show': 'walvault config show --config /etc/walvault/walvault.conf',
  'config docs': 'walvault config docs > docs/configuration.md',
  'wal-list': 'walvault wal-list --timeline 1 --from 0/3000000',
  'wal-show': 'walvault wal-show --width 100',
  'wal-verify': 'walvault wal-verify --deep',
  'wal-delete': 'walvault wal-delete --before 7d --dry-run',
  check: "walvault check --pg-conninfo 'host=db1 user=postgres' --switch-wal",
  status: 'walvault status --agent http://127.0.0.1:9187',
};

/** The settings every command shares, grouped as in docs/configuration.md: `walvault help options`. */
function sharedOptionsHelp(): string {
  const out = [
    'Usage: walvault <command> [--<setting> <value> ...]',
    '',
    'Settings every command accepts, also as WALVAULT_* variables or `name = value` lines in the config',
    'file (precedence: flag > environment > file > default). All settings: walvault config docs.',
  ];
  for (const group of SHARED_GROUPS) {
    out.push('', `${GROUP_TITLES[group]}:`);
    for (const def of (OPTIONS as readonly OptionDef[]).filter((o) => o.group === group)) {
      const flag = def.type === 'bool' ? `--${def.name} [bool]` : `--${def.name} <value>`;
      out.push(`  ${flag}`, ...wrap(optionHelp(def), 96).map((l) => `      ${l}`));
    }
  }
  return `${out.join('\n')}\n`;
}

/** Adds the `options` help topic and the per-command examples; call after every command is registered. */
export function addHelpExtras(program: Command): void {
  const topic = program.command('options', { hidden: true }).description('Settings shared by every command');
  topic.configureHelp({ formatHelp: () => sharedOptionsHelp() });
  topic.action(() => {
    process.stdout.write(sharedOptionsHelp());
  });
  program.addHelpText('after', `\n${SHARED_OPTIONS_HINT}\nEvery setting, with its environment variable: walvault config docs`);
  const visit = (cmd: Command, path: string): void => {
    const example = EXAMPLES[path];
    if (example !== undefined) cmd.addHelpText('after', `\nExample:\n  $ ${example}`);
    for (const sub of cmd.commands) visit(sub, path === '' ? sub.name() : `${path} ${sub.name()}`);
  };
  visit(program, '');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}
