/**
 * walvault's version. package.json is the one place it is written: it sits two levels above this
 * module both in src/ (tests) and in dist/ (the installed package), and reading it costs one small
 * file at start-up.
 */
import { readFileSync } from 'node:fs';

function readPackageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}

export const VERSION: string = readPackageVersion();
