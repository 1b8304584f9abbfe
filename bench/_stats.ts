/**
 * Summary statistics for repeated measurements: median, percentiles and spread.
 * @module
 */

/** Median, spread and count of a set of measurements. */
export interface Summary {
  /** How many values. */
  n: number;
  /** The median (50th percentile, interpolated). */
  median: number;
  /** The smallest value. */
  min: number;
  /** The largest value. */
  max: number;
  /** The 95th percentile (interpolated). */
  p95: number;
}

/**
 * The `q`-quantile of `values` (0 ≤ q ≤ 1), interpolating linearly between closest ranks.
 *
 * @throws {RangeError} when `values` is empty or `q` is outside [0, 1].
 * @example
 * ```ts
 * quantile([1, 2, 3, 4], 0.5); // 2.5
 * ```
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError("Cannot take a quantile of no values");
  if (!(q >= 0 && q <= 1)) throw new RangeError(`Quantile must be within [0, 1]: got ${q}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = q * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const a = sorted[low]!;
  const b = sorted[high]!;
  return a + (b - a) * (rank - low);
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Median, p95 and min–max of `values`. */
export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    p95: quantile(values, 0.95),
  };
}

/**
 * Ratios `a[i] / b[i]` of paired measurements (same repetition), for ratio columns whose spread
 * reflects pairs measured side by side rather than the extremes of two independent sets.
 */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.min(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(a[i]! / b[i]!);
  return out;
}
