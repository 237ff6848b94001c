import { type Command } from 'commander';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';
import { emit, withArchive } from '../with-archive.js';

interface Flags {
  dryRun?: boolean;
  json?: boolean;
}

export function registerIdentityRebuild(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('identity-rebuild')
      .summary('Rebuild a lost or damaged archive identity record from the archived WAL')
      .description(
        'Rebuild the archive identity record (archive.info and archive.info.copy) from the archived objects: system id and ' +
          'segment size from their headers, PostgreSQL major from one decoded segment; or repair one damaged copy from the other. ' +
          'Refuses when the objects come from more than one cluster. Exit 0: done (or nothing to do); 4: nothing to rebuild from; ' +
          '128: the objects disagree; 3: could not read the archive',
      )
      .option('--dry-run', 'only show what would be written')
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { rebuildIdentity } = await import('../../ops/identity-rebuild.js');
        const { renderRebuild } = await import('../render/identity-rebuild.js');
        const f = cmd.opts<Flags>();
        emit(ctx, f.json, await withArchive(ctx, (archive) => rebuildIdentity(archive, { dryRun: f.dryRun === true })), renderRebuild);
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}
