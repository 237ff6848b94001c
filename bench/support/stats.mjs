// Small statistics for benchmark samples. Percentiles interpolate linearly between ranks (as in
// research/peer-baseline.md), so the p95 of 40 samples is not simply the 2nd-largest one.

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

export const median = (values) => percentile(values, 50);

export const sum = (values) => values.reduce((a, b) => a + b, 0);

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Three significant digits, no exponent: 0.0123, 1.23, 12.3, 123, 1234. */
export function fmt(x) {
  if (x === undefined || x === null || Number.isNaN(x)) return '-';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a === 0) return '0';
  return x.toPrecision(3);
}
