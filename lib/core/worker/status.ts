/**
 * What a worker reports every second in `worker.status`: how many tasks it completed in the last
 * minute, counted in one bucket per second (a list of completion times held 1.2 million numbers at
 * 20,000 tasks a second).
 * @module
 */

/** Completions in each second of the last minute; see the module doc. */
export class CompletionRate {
  /** Completions by epoch second modulo 60. */
  #perSecond: number[] = new Array(60).fill(0);
  /** The epoch second the buckets were last brought up to. */
  #second = 0;

  /** Counts a completion at `nowMs` (milliseconds since the epoch). */
  count(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second !== this.#second) this.#toSecond(second);
    this.#perSecond[second % 60]!++;
  }

  /** Completions in the 60 seconds up to `nowMs`. */
  lastMinute(nowMs: number): number {
    this.#toSecond(Math.floor(nowMs / 1000));
    return this.#perSecond.reduce((sum, count) => sum + count, 0);
  }

  /** Empties the buckets of the seconds that passed since the last count or report. */
  #toSecond(second: number): void {
    if (second <= this.#second) return;
    for (let s = Math.max(this.#second + 1, second - 59); s <= second; s++) {
      this.#perSecond[s % 60] = 0;
    }
    this.#second = second;
  }
}
