/**
 * Running deliveries: at most `concurrency` at once (the others wait in arrival order for a free
 * slot), each handler with a deadline (a sweeper aborts the ones past the task timeout) and with a
 * signal that its connection's loss aborts too.
 *
 * The "maybe-promise" path: handling a delivery returns a promise only when it goes on after this
 * turn. A synchronous handler's tasks then follow each other in one loop, with no promise, no
 * timer and no recursion: most of what a no-op task costs.
 * @module
 */
import { abandonOnAbort, isThenable } from "../async.ts";

/** Options of {@linkcode Slots}. */
export interface SlotsOptions<D> {
  /** Deliveries handled at once. */
  concurrency: number;
  /** Handles one delivery; returns a promise only when that takes more than this turn. */
  handle: (delivery: D) => Promise<void> | undefined;
  /** Hears of a handling that threw or rejected: a bug, since handling settles every failure. */
  onError: (error: unknown) => void;
}

/** At most `concurrency` deliveries handled at once; see the module doc. */
export class Slots<D> {
  #concurrency: number;
  #handle: (delivery: D) => Promise<void> | undefined;
  #onError: (error: unknown) => void;
  #waiting: D[] = [];
  /** Deliveries whose handling has begun and not ended. */
  #active = 0;
  #idle: (() => void)[] = [];

  /** Slots that hand each delivery to `options.handle`. */
  constructor(options: SlotsOptions<D>) {
    this.#concurrency = options.concurrency;
    this.#handle = options.handle;
    this.#onError = options.onError;
  }

  /** Deliveries held: being handled plus waiting for a slot. */
  get inHand(): number {
    return this.#active + this.#waiting.length;
  }

  /** Deliveries being handled. */
  get active(): number {
    return this.#active;
  }

  /** Handles `delivery` now if a slot is free, else when one is. */
  receive(delivery: D): void {
    if (this.#active >= this.#concurrency) {
      this.#waiting.push(delivery);
      return;
    }
    this.#active++;
    this.#run(delivery);
  }

  /** Forgets the waiting deliveries: their channel is gone, and the broker requeues them. */
  dropWaiting(): void {
    this.#waiting.length = 0;
  }

  /** Resolves once no delivery is being handled. */
  idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Handles a delivery, then the waiting ones that take its slot while they end in this turn. */
  #run(first: D): void {
    let delivery: D | undefined = first;
    while (delivery !== undefined) {
      let pending: Promise<void> | undefined;
      try {
        pending = this.#handle(delivery)?.catch(this.#onError);
      } catch (error) {
        this.#onError(error);
      }
      if (pending !== undefined) {
        pending.then(() => {
          const next = this.#free();
          if (next !== undefined) this.#run(next);
        });
        return;
      }
      delivery = this.#free();
    }
  }

  /** Ends a delivery's turn: returns the waiting delivery that takes its slot, if any. */
  #free(): D | undefined {
    const next = this.#waiting.shift();
    if (next === undefined && --this.#active === 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
    return next;
  }
}

/** A handler while it runs: what aborts it, and by when it must end. */
export interface Run {
  /** Aborts the handler's signal. */
  controller: AbortController;
  /** `performance.now()` by which it must end (Infinity without a task timeout). */
  deadline: number;
}

/** Aborts the runs that go on past their deadline, checking every few milliseconds. */
export class Deadlines {
  #runs = new Set<Run>();
  #timeoutMs: number;
  #reason: () => unknown;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /**
   * Deadlines `timeoutMs` after each run starts (0: none); a run past it is aborted with
   * `reason()`.
   */
  constructor(timeoutMs: number, reason: () => unknown) {
    this.#timeoutMs = timeoutMs;
    this.#reason = reason;
  }

  /** The deadline of a run that starts at `since` (`performance.now()`). */
  deadline(since: number): number {
    return this.#timeoutMs > 0 ? since + this.#timeoutMs : Infinity;
  }

  /** Watches `run` until {@linkcode Deadlines.delete}. */
  add(run: Run): void {
    this.#runs.add(run);
  }

  /** Stops watching `run`. */
  delete(run: Run): void {
    this.#runs.delete(run);
  }

  /** Aborts the runs past their deadline at `now`. */
  sweep(now: number = performance.now()): void {
    for (const run of this.#runs) {
      if (now < run.deadline) continue;
      this.#runs.delete(run);
      run.controller.abort(this.#reason());
    }
  }

  /** Sweeps every 100 ms (every quarter of the timeout when shorter), until `stop()`. */
  start(): void {
    if (this.#timeoutMs > 0 && this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.sweep(), Math.min(100, this.#timeoutMs / 4));
    }
  }

  /** Stops sweeping. */
  stop(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}

/**
 * Calls `handler` with a fresh signal. A handler that ends in this turn (it returns anything but a
 * thenable) could not have been aborted: its result is returned as it is. Otherwise a promise of
 * its result is returned, and until it settles the run is watched by `deadlines` and by `runs`
 * (the runs its connection's loss aborts); a run aborted meanwhile is abandoned (its promise left
 * behind) and rejects with the abort's reason. So the result is a `Promise` exactly when the
 * handler goes on after this turn.
 */
export function runHandler(
  handler: (signal: AbortSignal) => unknown,
  since: number,
  deadlines: Deadlines,
  runs: Set<Run>,
): unknown {
  const controller = new AbortController();
  const { signal } = controller;
  const result = handler(signal);
  if (!isThenable(result)) return result;
  const run: Run = { controller, deadline: deadlines.deadline(since) };
  runs.add(run);
  deadlines.add(run);
  const end = () => {
    runs.delete(run);
    deadlines.delete(run);
  };
  return abandonOnAbort(Promise.resolve(result), signal).then((value) => {
    end();
    return value;
  }, (error) => {
    end();
    throw signal.aborted ? signal.reason : error;
  });
}
