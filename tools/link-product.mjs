// After `tsc -b tools`: build/src points at dist/, the product compiled once. The harness and the
// demo import product modules as ../../src/… (so that tests and the type check use the sources);
// from build/tools/… that path lands here. Node resolves the link to dist/, so a process that loads
// both (the benchmarks) holds one copy of each product module.
import { rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const link = join(root, 'build', 'src');
rmSync(link, { recursive: true, force: true });
symlinkSync(join('..', 'dist'), link, 'dir');
