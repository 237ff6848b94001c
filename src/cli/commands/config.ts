import { type Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { OPTIONS, type OptionDef } from '../../config/options.js';
import { renderConfigurationDoc } from '../../config/docs.js';
import type { RunFn } from '../context.js';
import { addConfigOptions, configFlags } from '../options.js';

export function registerConfig(program: Command, run: RunFn): void {
  const config = program.command('config').description('Show the effective configuration or its documentation');

  const show = addConfigOptions(
    config.command('show').description('Print every setting with its value and where it came from (secrets hidden)'),
    ['storage', 's3', 'archive', 'push', 'fetch', 'stream'],
    // It reads every setting to show it; listing them all here would repeat `walvault help options`.
    { hideAll: true },
  ).option('--json', 'machine-readable output');
  show.action(() =>
    run(show, async (ctx) => {
      const { sources, file } = loadConfig({ flags: configFlags(show.optsWithGlobals()) });
      // The file read is the header line; a `config` row under it would say "unset" for the file just read.
      const rows = (OPTIONS as readonly OptionDef[])
        .filter((def) => def.name !== 'config')
        .map((def) => {
          const value = (ctx.config as Record<string, unknown>)[def.name];
          const shown = value === undefined ? null : def.secret ? '[redacted]' : value;
          return { name: def.name, value: shown, source: sources[def.name] ?? 'unset', env: def.env };
        });
      if (show.opts()['json']) {
        ctx.out(JSON.stringify({ file: file ?? null, settings: rows }, null, 2));
        return;
      }
      ctx.out(`config file: ${file ?? '(none)'}`);
      const width = Math.max(...rows.map((r) => r.name.length));
      for (const r of rows) {
        ctx.out(`${r.name.padEnd(width)}  ${r.value === null ? '-' : String(r.value)}  (${r.source})`);
      }
    }),
  );

  const docs = config.command('docs').description('Print docs/configuration.md (generated from the options table)');
  docs.action(() =>
    run(docs, async (ctx) => {
      ctx.out(renderConfigurationDoc());
    }),
  );
}
