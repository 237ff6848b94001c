import type { ArchiveContext } from '../archive/context.js';
import type { CliContext } from './context.js';

/**
 * Opens the configured archive, runs `body` on it and closes the storage whatever happens: the
 * open/try/finally every operator command needs. The archive code is loaded here, lazily, so that
 * commands that never reach it (help, a usage error) start fast.
 */
export async function withArchive<T>(ctx: CliContext, body: (archive: ArchiveContext) => Promise<T>): Promise<T> {
  const { openArchive } = await import('../archive/open.js');
  const archive = await openArchive(ctx.config, ctx.log, ctx.signal);
  try {
    return await body(archive);
  } finally {
    await archive.storage.close();
  }
}

/** Prints `value` as indented JSON with --json, else as `render` words it. */
export function emit<T>(ctx: CliContext, json: boolean | undefined, value: T, render: (value: T) => string): void {
  ctx.out(json ? JSON.stringify(value, null, 2) : render(value));
}
