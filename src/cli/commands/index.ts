/**
 * The lazy command registry: one line per top-level command. A run imports only the module of the
 * command it dispatches to; every other command is a stub that carries just its name, usage and
 * summary, so `walvault --help` and "did you mean" still know them all. Start-up cost matters here:
 * PostgreSQL starts wal-push and wal-fetch once per segment.
 *
 * Adding a command: one line, `usage` and `summary` exactly as its top-level help line shows them
 * (test/unit/cli/registry.test.ts compares them with the loaded command); hidden commands (started
 * by walvault itself) have no summary. Several names may share one module.
 */
import { Help, type Command } from 'commander';
import type { RunFn } from '../context.js';

export type Register = (program: Command, run: RunFn) => void;

export interface CommandEntry {
  readonly name: string;
  /** What follows the name in `walvault --help`: `[options]` when it has options, then its arguments. */
  readonly usage: string;
  /** The line `walvault --help` shows; none for hidden commands. */
  readonly summary?: string;
  readonly load: () => Promise<Register>;
}

// prettier-ignore
export const COMMANDS: readonly CommandEntry[] = [
  { name: 'wal-push', usage: '[options] <path>', summary: "Archive one WAL file (archive_command = 'wal-push %p')", load: async () => (await import('./wal-push.js')).registerWalPush },
  { name: 'wal-push-ahead', usage: '[options]', load: async () => (await import('./wal-push.js')).registerWalPush },
  { name: 'wal-fetch', usage: '[options] <name> [path]', summary: "Restore one WAL file (restore_command = 'wal-fetch %f %p'), or with --lsn the segment that holds an LSN", load: async () => (await import('./wal-fetch.js')).registerWalFetch },
  { name: 'wal-prefetch', usage: '[options]', load: async () => (await import('./wal-fetch.js')).registerWalFetch },
  { name: 'stream', usage: '[options]', summary: 'Receive WAL over physical replication and archive it (long-running agent; SIGTERM stops it cleanly)', load: async () => (await import('./stream.js')).registerStream },
  { name: 'daemon', usage: '[options]', summary: 'Archive .ready segments ahead of archive_command, continuously (wal-push then returns in milliseconds)', load: async () => (await import('./daemon.js')).registerDaemon },
  { name: 'segment', usage: '', summary: 'Work with local WAL segment files', load: async () => (await import('./segment.js')).registerSegment },
  { name: 'config', usage: '', summary: 'Show the effective configuration or its documentation', load: async () => (await import('./config.js')).registerConfig },
  { name: 'wal-list', usage: '[options]', summary: 'List archived WAL files with sizes, codec and upload time (listing only)', load: async () => (await import('./wal-list.js')).registerWalList },
  { name: 'wal-show', usage: '[options]', summary: 'Show timelines, switch points, gaps and a map of the archive', load: async () => (await import('./wal-show.js')).registerWalShow },
  { name: 'wal-verify', usage: '[options]', summary: 'Verify the archive is whole and intact (exit 128 when problems are found)', load: async () => (await import('./wal-verify.js')).registerWalVerify },
  { name: 'wal-delete', usage: '[options]', summary: 'Retention: delete WAL before a segment, an LSN or a time', load: async () => (await import('./wal-delete.js')).registerWalDelete },
  { name: 'wal-resolve', usage: '[options] [names...]', summary: 'Keep one content for a WAL name that holds several (moves the others to errors/)', load: async () => (await import('./wal-resolve.js')).registerWalResolve },
  { name: 'check', usage: '[options]', summary: 'Check PostgreSQL, archiving settings, storage and archive identity', load: async () => (await import('./check.js')).registerCheck },
  { name: 'status', usage: '[options]', summary: 'Archiving status: last archived segment, lag, queue, last error', load: async () => (await import('./status.js')).registerStatus },
  { name: 'identity-rebuild', usage: '[options]', summary: 'Rebuild a lost or damaged archive identity record from the archived WAL', load: async () => (await import('./identity-rebuild.js')).registerIdentityRebuild },
  { name: 'backup-push', usage: '[options]', summary: 'Take a base backup over the replication protocol into the archive', load: async () => (await import('./backup-push.js')).registerBackupPush },
  { name: 'backup-list', usage: '[options]', summary: 'List base backups with status, LSNs, sizes and the recovery window each opens', load: async () => (await import('./backup-list.js')).registerBackupList },
  { name: 'backup-show', usage: '[options] <name>', summary: 'Show everything about one base backup', load: async () => (await import('./backup-show.js')).registerBackupShow },
  { name: 'backup-verify', usage: '[options] [name]', summary: 'Verify a base backup is restorable (exit 128 when problems are found)', load: async () => (await import('./backup-verify.js')).registerBackupVerify },
  { name: 'backup-delete', usage: '[options] <name>', summary: 'Delete one base backup (its backup.json first)', load: async () => (await import('./backup-delete.js')).registerBackupDelete },
  { name: 'expire', usage: '[options]', summary: 'Retention: delete old base backups, failed leftovers and the WAL no kept backup needs', load: async () => (await import('./expire.js')).registerExpire },
  { name: 'restore', usage: '[options]', summary: 'Restore a base backup into a data directory, set up for point-in-time recovery', load: async () => (await import('./restore.js')).registerRestore },
];

/** The registry entry `args` dispatch to (`help <name>` counts as `<name>`), if any. */
export function commandFor(args: readonly string[]): CommandEntry | undefined {
  const name = args[0] === 'help' ? args[1] : args[0];
  return COMMANDS.find((e) => e.name === name);
}

/**
 * Registers the command `args` dispatch to with all its options (importing its module), and every
 * other command as a stub. `all` loads every module instead (tests compare the two).
 */
export async function registerCommands(program: Command, run: RunFn, args: readonly string[], all = false): Promise<void> {
  const wanted = all ? COMMANDS : [commandFor(args)].filter((e) => e !== undefined);
  const loaded = new Set<Register>();
  for (const entry of wanted) {
    const register = await entry.load();
    if (loaded.has(register)) continue;
    loaded.add(register);
    register(program, run);
  }
  const stubs = new Map<Command, string>();
  for (const entry of COMMANDS) {
    if (program.commands.some((c) => c.name() === entry.name)) continue;
    const stub = program.command(entry.name, { hidden: entry.summary === undefined }).summary(entry.summary ?? '');
    // Only reachable if dispatch and this table disagree: say so instead of doing nothing.
    stub
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        throw new Error(`command '${entry.name}' was not loaded`);
      });
    stubs.set(stub, entry.usage === '' ? entry.name : `${entry.name} ${entry.usage}`);
  }
  if (stubs.size > 0) {
    program.configureHelp({
      subcommandTerm(cmd) {
        return stubs.get(cmd) ?? Help.prototype.subcommandTerm.call(this, cmd);
      },
    });
  }
}
