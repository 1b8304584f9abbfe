/**
 * ISO 8601 timestamps for events and tasks, made cheaply: `Date.prototype.toISOString` costs
 * about 1 µs, more than the rest of a no-op task's bookkeeping, while every task stamps one or
 * two. The date and time up to the second are formatted once per second and reused, and the last
 * timestamp is given again for the same millisecond (tens of tasks end within one), which also
 * makes the events held meanwhile share one string.
 * @module
 */

let cachedSecond = Number.NaN;
/** `YYYY-MM-DDTHH:mm:ss.` of {@linkcode cachedSecond}. */
let cachedPrefix = "";
/** The last timestamp made, and its time. */
let cachedMs = Number.NaN;
let cachedText = "";

/**
 * The ISO 8601 form of `ms` (milliseconds since the epoch, a whole number), exactly as
 * `new Date(ms).toISOString()` gives it.
 *
 * @example
 * ```ts
 * isoTime(0); // "1970-01-01T00:00:00.000Z"
 * ```
 */
export function isoTime(ms: number = Date.now()): string {
  if (ms === cachedMs) return cachedText;
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    cachedSecond = second;
  }
  const milli = ms - second * 1000;
  cachedMs = ms;
  cachedText = cachedPrefix + (milli < 10 ? "00" : milli < 100 ? "0" : "") + milli + "Z";
  return cachedText;
}
