// Module loader hooks (they run on the loader thread): one line per loaded module URL.
import { appendFileSync } from 'node:fs';

export async function load(url, context, nextLoad) {
  const file = process.env['WALVAULT_TEST_MODULE_TRACE'];
  if (file) appendFileSync(file, `${url}\n`);
  return nextLoad(url, context);
}
