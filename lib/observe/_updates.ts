/**
 * The updates a watcher has received and not handed out yet, in order, for one reader at a time
 * (`for await`). Bounded: while fewer than `limit` batches (messages) wait, each is taken (acked)
 * as it comes; past that, once its last item is handed out, so that a reader that falls behind
 * leaves the rest on the broker (at most the prefetch more). The latest state replaces one not
 * handed out yet.
 *
 * Why not always ack once read: on RabbitMQ 3.10.8, a worker's event published right before its
 * connection died was missing from a durable (quorum) subscription queue whose consumer held
 * the previous event unacked, in about 1 run in 10 of `tests/faults_chaos_test.ts`; acked at
 * once, in none of 75.
 * @module
 */

interface Batch<T> {
  items: readonly T[];
  next: number;
  taken: () => void;
}

/** A queue of updates read with {@linkcode Updates.next}; see the module doc. */
export class Updates<T> {
  #limit: number;
  #pending: Batch<T>[] = [];
  #latest: Batch<T> | undefined;
  #changed = Promise.withResolvers<void>();
  #ended = false;
  #failure: { error: unknown } | undefined;

  /** Takes batches as they come while fewer than `limit` wait unread. */
  constructor(limit = Infinity) {
    this.#limit = limit;
  }

  /**
   * Adds `items`, to be handed out in order. `taken` runs at once while fewer than the limit of
   * batches wait, else once the last of them is handed out.
   */
  push(items: readonly T[], taken: () => void = () => {}): void {
    if (this.#ended) return;
    if (items.length === 0 || this.#pending.length < this.#limit) {
      taken();
      taken = () => {};
    }
    if (items.length === 0) return;
    this.#pending.push({ items, next: 0, taken });
    this.#notify();
  }

  /** Adds `item`, or puts it in the place of the last one given here while that one waits. */
  latest(item: T): void {
    if (this.#ended) return;
    if (this.#latest !== undefined) {
      this.#latest.items = [item];
    } else {
      this.#latest = { items: [item], next: 0, taken: () => {} };
      this.#pending.push(this.#latest);
    }
    this.#notify();
  }

  /** Ends the updates: what waits is dropped, and {@linkcode Updates.next} says done. */
  end(): void {
    this.#ended = true;
    this.#pending = [];
    this.#latest = undefined;
    this.#notify();
  }

  /** Makes {@linkcode Updates.next} throw `error` once every update waiting is handed out. */
  fail(error: unknown): void {
    this.#failure ??= { error };
    this.#notify();
  }

  /** The next update, once there is one. */
  async next(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      const batch = this.#pending[0];
      if (batch !== undefined) {
        const item = batch.items[batch.next++]!;
        if (batch.next === batch.items.length) {
          this.#pending.shift();
          if (batch === this.#latest) this.#latest = undefined;
          batch.taken();
        }
        return { done: false, value: item };
      }
      if (this.#ended) return { done: true, value: undefined };
      if (this.#failure !== undefined) throw this.#failure.error;
      await this.#changed.promise;
    }
  }

  #notify(): void {
    this.#changed.resolve();
    this.#changed = Promise.withResolvers();
  }
}
