/**
 * A pass over `<queue>.dead`: each message taken in turn, kept or requeued, published again where
 * it goes and acked only once the broker has confirmed the copy, so the queue ends in its original
 * order (see `../dead_letters.ts` for why nothing is ever given back).
 * @module
 */
import { errorMessage, TareasError } from "../../core/errors.ts";
import { printable } from "../../core/text.ts";
import { type Channels, checkQueue } from "./_channels.ts";
import { keptHeaders, RefusedError, Republisher, resetHeaders } from "./_republish.ts";
import { type DeadLetter, parseDeadLetter } from "./letter.ts";

/** What to do with one dead letter in a pass over the queue. */
export type Decision = "keep" | "requeue";

/**
 * What a pass over the dead-letter queue did.
 *
 * @example
 * ```ts
 * const result: PassResult = await dead.requeue("all");
 * console.log(`${result.requeued} of ${result.total} sent back`);
 * ```
 */
export interface PassResult {
  /**
   * The dead letters seen, in queue order (bodies included), at most the pass's `limit`; empty
   * when the pass was given `onLetter`.
   */
  letters: DeadLetter[];
  /** How many dead letters the pass went through. */
  seen: number;
  /** How many were sent back to the work queue. */
  requeued: number;
  /** Messages in `<queue>.dead` when the pass began. */
  total: number;
}

/**
 * Options of one operation on the dead letters.
 *
 * @example
 * ```ts
 * const { letters } = await dead.list({ limit: 20, signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface PassOptions {
  /** Stops taking more messages; those in hand are finished. */
  signal?: AbortSignal;
  /** Most messages taken in this pass. @default {Infinity} */
  limit?: number;
  /**
   * Called with each dead letter as it is read, with the number of messages in the queue when
   * the pass began. When given, the result's `letters` stays empty: a pass holds one message at
   * a time, whatever the size of the queue.
   */
  onLetter?: (letter: DeadLetter, total: number) => void | Promise<void>;
  /** Parse each body as JSON (see {@linkcode ParseOptions}). @default {true} */
  json?: boolean;
}

/** What a pass does: which queue it goes through, and what it does with each dead letter. */
export interface PassPlan {
  /** The work queue, where requeued dead letters go. */
  queue: string;
  /** Its dead-letter queue, the one the pass goes through. */
  dead: string;
  /** Whether a dead letter stays in place or goes back to the work queue. */
  decide: (letter: DeadLetter) => Decision;
}

/**
 * Goes once through the messages in `plan.dead` when it begins (at most `options.limit`), moving
 * each where `plan.decide` says, on `channels` (see {@linkcode Channels}).
 *
 * @throws {ConfigError} when the dead-letter queue does not exist.
 * @throws {TareasError} when a dead letter cannot be requeued (it stays in the dead-letter queue).
 */
export async function runPass(
  channels: Channels,
  plan: PassPlan,
  options: PassOptions = {},
): Promise<PassResult> {
  const { get, publish } = channels;
  const { queue, dead } = plan;
  const { messageCount: total } = await checkQueue(
    get,
    dead,
    `the dead letters of "${queue}" live there once a worker has run on it`,
  );
  const limit = Math.min(total, options.limit ?? Infinity);
  const result: PassResult = { letters: [], seen: 0, requeued: 0, total };
  const copies = new Republisher(publish);
  for (let i = 0; i < limit && !options.signal?.aborted; i++) {
    const message = await get.get(dead, { noAck: false });
    if (message === false) break;
    const letter = await parseDeadLetter(message, { json: options.json ?? true });
    if (plan.decide(letter) === "requeue") {
      try {
        await copies.send(queue, message, resetHeaders(letter.headers));
        result.requeued++;
      } catch (error) {
        // Not in the work queue: back to the tail of the dead letters, then stop. Should that
        // be refused too, the original stays unacked: closing the channel gives it back.
        await copies.send(dead, message, keptHeaders(letter)).then(
          () => get.ack(message),
          () => {},
        );
        const why = error instanceof RefusedError
          ? `the broker refused the publish to "${queue}"`
          : errorMessage(error);
        throw new TareasError(
          `Cannot requeue dead letter ${printable(letter.id)}: ${why}; it stays in "${dead}"`,
          { cause: error },
        );
      }
    } else {
      await copies.send(dead, message, keptHeaders(letter));
    }
    get.ack(message);
    result.seen++;
    // Once it is back in place: a callback that throws (stdout closed) leaves nothing behind.
    if (options.onLetter === undefined) result.letters.push(letter);
    else await options.onLetter(letter, total);
  }
  await get.checkQueue(dead); // a round trip: the acks are processed
  return result;
}
