#!/usr/bin/env node
// Compiled entry point behind bin/walvault, bin/wal-push and bin/wal-fetch.
// `WALVAULT_FASTPATH_COMMAND` is set by the sh launchers (wal-push / wal-fetch) to pick the command.
import { main } from './main.js';

const prepend = process.env['WALVAULT_FASTPATH_COMMAND'] ? [process.env['WALVAULT_FASTPATH_COMMAND']] : [];
await main(process.argv, prepend);
