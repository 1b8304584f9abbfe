/**
 * How late the event loop runs, measured the cheap way: a timer due every
 * {@linkcode LAG_INTERVAL_MS} notes how much later than due it fired. The lag reported is the
 * worst of the last {@linkcode LAG_WINDOW} ticks (10 s), or how overdue the next tick is when
 * that is worse (the loop is stalled right now). Two wake-ups a second, unref'd: it never keeps
 * a program alive.
 * @module
 */

/** How often the timer is due, in ms. */
export const LAG_INTERVAL_MS = 500;

/** How many ticks the worst lag is kept for. */
export const LAG_WINDOW = 20;

/** The event loop's lag; `start()` and `stop()` its timer (ticks can also be fed by hand). */
export class EventLoopLag {
  #lags: number[] = [];
  #last: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Starts counting from `now` (`performance.now()`). */
  constructor(now: number = performance.now()) {
    this.#last = now;
  }

  /** Records a tick of the timer at `now`. */
  tick(now: number = performance.now()): void {
    this.#lags.push(Math.max(0, now - this.#last - LAG_INTERVAL_MS));
    if (this.#lags.length > LAG_WINDOW) this.#lags.shift();
    this.#last = now;
  }

  /** The lag at `now`, in ms: the worst recent tick's, or how overdue the next tick is. */
  lag(now: number = performance.now()): number {
    return Math.max(0, now - this.#last - LAG_INTERVAL_MS, ...this.#lags);
  }

  /** Ticks every {@linkcode LAG_INTERVAL_MS} until `stop()`. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#last = performance.now();
    this.#timer = setInterval(() => this.tick(), LAG_INTERVAL_MS);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops ticking. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
