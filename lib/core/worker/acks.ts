/**
 * The acks of one channel's deliveries, batched: a finished delivery is acked at the end of the
 * event loop's turn (at once when the prefetch is used up), and one ack with `multiple` covers a
 * run of contiguous finished deliveries, so that tasks ending in the same turn (those of one socket
 * read, with a synchronous handler) cost one ack frame, not one each. Before any ack goes out the
 * events it must not overtake are published (see `beforeAcks`): an acked task is never one whose
 * completion its listener missed.
 * @module
 */

/** What the batcher needs of a channel (amqplib's `Channel` has both). */
export interface AckChannel<M> {
  /** Acks `message`, and every earlier unacked delivery with `allUpTo`. */
  ack(message: M, allUpTo?: boolean): void;
  /** Rejects `message`; without requeue, the queue dead-letters it. */
  nack(message: M, allUpTo?: boolean, requeue?: boolean): void;
}

/** Options of {@linkcode AckBatcher}. */
export interface AckBatcherOptions {
  /** The channel's prefetch: with that many deliveries unacked, acks go out at once. */
  prefetch: number;
  /**
   * Runs just before acks (or a reject) go out, to publish the events they must not overtake;
   * `awaited` when one of them is of a task someone waits for (all its events go first).
   */
  beforeAcks: (awaited: boolean) => void;
  /** Hears of an ack or reject that could not be sent (the channel closed a moment ago). */
  onDropped?: (error: unknown) => void;
  /** Runs a function at the end of the current turn. @default {setImmediate} */
  defer?: (fn: () => void) => void;
}

/** The deliveries of one channel until they are acked or rejected; see the module doc. */
export class AckBatcher<M> {
  #channel: AckChannel<M>;
  #prefetch: number;
  #beforeAcks: (awaited: boolean) => void;
  #onDropped: (error: unknown) => void;
  #defer: (fn: () => void) => void;
  /** Deliveries not yet acked or rejected, in delivery order. */
  #delivered: M[] = [];
  /** Deliveries finished and waiting for their ack. */
  #finished = new Set<M>();
  #scheduled = false;
  /** A finished delivery waiting for its ack is of a task someone waits for. */
  #awaited = false;
  #closed = false;

  /** A batcher for the deliveries of `channel`. */
  constructor(channel: AckChannel<M>, options: AckBatcherOptions) {
    this.#channel = channel;
    this.#prefetch = options.prefetch;
    this.#beforeAcks = options.beforeAcks;
    this.#onDropped = options.onDropped ?? (() => {});
    this.#defer = options.defer ?? setImmediate;
  }

  /** Deliveries received and not yet acked or rejected. */
  get unsettled(): number {
    return this.#delivered.length;
  }

  /** Records a delivery as it arrives (before its handling begins). */
  received(message: M): void {
    if (!this.#closed) this.#delivered.push(message);
  }

  /**
   * Acks a finished delivery: at the end of this turn with the others that finish in it, or at
   * once when the prefetch is used up (the broker sends nothing more until an ack).
   */
  ack(message: M, awaited: boolean): void {
    if (this.#closed) {
      return this.#onDropped(new Error("the channel closed: the broker requeued it"));
    }
    this.#finished.add(message);
    if (awaited) this.#awaited = true;
    if (this.#delivered.length >= this.#prefetch) {
      this.flush();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      this.#defer(() => this.flush());
    }
  }

  /** Rejects a delivery without requeue, now, after every queued event (so the queue dead-letters it). */
  reject(message: M): void {
    if (this.#closed) {
      return this.#onDropped(new Error("the channel closed: the broker requeued it"));
    }
    this.#beforeAcks(true);
    remove(this.#delivered, message);
    try {
      this.#channel.nack(message, false, false);
    } catch (error) {
      this.#onDropped(error);
    }
  }

  /**
   * Publishes the events the acks must not overtake, then acks the finished deliveries: one ack
   * covering the contiguous run at the head, and one each for those finished beyond a gap.
   */
  flush(): void {
    this.#scheduled = false;
    const awaited = this.#awaited;
    this.#awaited = false;
    this.#beforeAcks(awaited);
    if (this.#closed || this.#finished.size === 0) return;
    const delivered = this.#delivered;
    const finished = this.#finished;
    let last: M | undefined;
    let covered = 0;
    while (delivered.length > 0 && finished.has(delivered[0]!)) {
      last = delivered.shift()!;
      finished.delete(last);
      covered++;
    }
    try {
      if (last !== undefined) this.#channel.ack(last, covered > 1);
      for (const message of finished) {
        remove(delivered, message);
        this.#channel.ack(message);
      }
    } catch (error) {
      this.#onDropped(error); // The channel closed a moment ago; its close event has not run yet.
    }
    finished.clear();
  }

  /** The channel is gone: its deliveries are back in the queue, and nothing is acked any more. */
  close(): void {
    this.#closed = true;
    this.#delivered.length = 0;
    this.#finished.clear();
  }
}

function remove<T>(list: T[], item: T): void {
  const index = list.indexOf(item);
  if (index !== -1) list.splice(index, 1);
}
