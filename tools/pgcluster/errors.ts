/**
 * The harness's own error: a PostgreSQL server that the demo, the tests or the benchmarks start
 * could not be found, initialized, started, stopped or asked something. Deliberately not one of the
 * product's WalvaultError classes: the harness is not product code, and nothing walvault ships
 * throws or maps this error.
 */
export class ClusterError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClusterError';
  }
}
