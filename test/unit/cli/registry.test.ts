/**
 * The lazy command registry (src/cli/commands/index.ts) stands in for the command modules it does
 * not load: its names, usage and summaries must say exactly what the loaded commands say.
 */
import { describe, expect, it } from 'vitest';
import { COMMANDS, commandFor } from '../../../src/cli/commands/index.js';
import { buildProgram } from '../../../src/cli/main.js';

describe('command registry', () => {
  it('walvault --help from the stubs is the help of the loaded commands, line for line', async () => {
    const lazy = await buildProgram(['--help']);
    const full = await buildProgram([], true);
    expect(lazy.helpInformation()).toBe(full.helpInformation());
  });

  it('lists every command the modules register, hidden ones as hidden, and nothing else', async () => {
    const full = await buildProgram([], true);
    const registered = full.commands
      .filter((c) => c.name() !== 'options')
      .map((c) => [c.name(), (c as unknown as { _hidden: boolean })._hidden]);
    expect(registered.sort()).toEqual(COMMANDS.map((e) => [e.name, e.summary === undefined]).sort());
  });

  it('each entry loads the module that registers its name', async () => {
    for (const entry of COMMANDS) {
      const program = await buildProgram([entry.name]);
      const cmd = program.commands.find((c) => c.name() === entry.name);
      // A loaded command has its options; a stub allows unknown ones.
      expect((cmd as unknown as { _allowUnknownOption: boolean })._allowUnknownOption, entry.name).toBe(false);
    }
  });

  it('dispatches on the first word, or the one after help', () => {
    expect(commandFor(['wal-push', 'pg_wal/x'])?.name).toBe('wal-push');
    expect(commandFor(['help', 'wal-fetch'])?.name).toBe('wal-fetch');
    expect(commandFor(['--help'])).toBeUndefined();
    expect(commandFor(['wal-pussh'])).toBeUndefined();
  });
});
