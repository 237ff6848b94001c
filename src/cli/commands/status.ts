import { type Command, Option } from 'commander';
import { ExitCode } from '../../common/errors.js';
import type { RunFn } from '../context.js';
import { addConfigOptions } from '../options.js';

interface Flags {
  agent?: string;
  json?: boolean;
}

export function registerStatus(program: Command, run: RunFn): void {
  const cmd = addConfigOptions(
    program
      .command('status')
      .summary('Archiving status: last archived segment, lag, queue, last error')
      .description(
        'Archiving status: last archived segment and LSN, lag in bytes and seconds, queue, last error; from the running agent ' +
          '(--agent, or metrics-host:metrics-port when metrics-port is set) or from PostgreSQL and the archive. Exit 0: ok; 3: failing or unknown',
      )
      .option('--agent <url>', 'base URL of a running walvault stream --metrics-port (GET <url>/status)')
      .addOption(new Option('--pg-conninfo <conninfo>', 'PostgreSQL connection (normal, not replication) (env WALVAULT_PG_CONNINFO)'))
      .option('--json', 'machine-readable output'),
    ['storage', 's3', 'archive'],
  );
  cmd.action(() =>
    run(
      cmd,
      async (ctx) => {
        const { backgroundLogOf, backupsOf, collectStatus } = await import('../../ops/status.js');
        const { renderStatus } = await import('../render/reports.js');
        const { openArchive } = await import('../../archive/open.js');
        const f = cmd.opts<Flags>();
        const c = ctx.config;
        const agentUrl =
          f.agent ?? (c['metrics-port'] !== undefined ? `http://${hostForUrl(c['metrics-host'])}:${c['metrics-port']}` : undefined);
        const archive = c.archive !== undefined ? await openArchive(c, ctx.log, ctx.signal) : undefined;
        try {
          const collected = await collectStatus(archive, {
            ...(agentUrl !== undefined ? { agentUrl } : {}),
            ...(c['pg-conninfo'] !== undefined ? { conninfo: c['pg-conninfo'] } : {}),
          });
          const pgdata = c.pgdata ?? process.env['PGDATA'];
          const backgroundLog = pgdata !== undefined ? backgroundLogOf(pgdata) : undefined;
          const withLog = backgroundLog ? { ...collected, backgroundLog } : collected;
          const report = archive ? { ...withLog, backups: await backupsOf(archive) } : withLog;
          ctx.out(f.json ? JSON.stringify(report, null, 2) : renderStatus(report, new Date()));
          return report.state === 'ok' ? ExitCode.ok : ExitCode.failure;
        } finally {
          await archive?.storage.close();
        }
      },
      { defaultLogLevel: 'warn' },
    ),
  );
}

/** An IPv6 listen address needs brackets in a URL; 0.0.0.0 / :: mean "this host". */
function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}
