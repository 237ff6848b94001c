import type { Command } from 'commander';
import type { RunFn } from '../context.js';
import { registerConfig } from './config.js';

export function registerCommands(program: Command, run: RunFn): void {
  registerConfig(program, run);
}
