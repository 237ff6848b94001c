#!/usr/bin/env node
// Compiled entry point behind bin/walvault, bin/wal-push and bin/wal-fetch.
// `WALVAULT_FASTPATH_COMMAND` is set by the sh launchers (wal-push / wal-fetch) to pick the command.
// Everything is imported on demand: `--version` needs one small module, not the command-line parser.
// archive_command output lands in the PostgreSQL log: keep the AWS SDK's Node-version notice out of
// it, on every path (the plain wal-push hook below never reaches main.ts).
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
const prepend = process.env['WALVAULT_FASTPATH_COMMAND'] ? [process.env['WALVAULT_FASTPATH_COMMAND']] : [];
const args = [...prepend, ...process.argv.slice(2)];
const first = args[0];
if (first === '--version' || first === '-V') {
  // As commander answers it: the version on stdout, exit 0, whatever follows.
  const { VERSION } = await import('../common/version.js');
  process.stdout.write(`${VERSION}\n`);
} else if (args.length === 2 && first === 'wal-push' && !(args[1] as string).startsWith('-')) {
  // The archiver's plain `wal-push %p`: no command-line parser (hooks.ts).
  const { runPlainWalPush } = await import('./hooks.js');
  await runPlainWalPush(args[1] as string);
} else {
  const { main } = await import('./main.js');
  await main(process.argv, prepend);
}
