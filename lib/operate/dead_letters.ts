/**
 * Dead letters a person can act on: list the tasks in `<queue>.dead` with why they died, show one,
 * send them back to the work queue with their attempt count reset, or purge them.
 *
 * Reading never loses a dead letter, on RabbitMQ 3.10 and 4.x alike. Peeking at a queue over AMQP
 * means taking a message and giving it back, and giving back (`nack`/`reject` with requeue, or a
 * channel closed with the message unacked) counts toward a quorum queue's delivery limit on some
 * 4.x versions, where `<queue>.dead` has the default limit of 20 (its arguments, only
 * `x-queue-type: quorum`, must not change) and no dead-letter exchange of its own: a message
 * given back 20 times would be dropped. So nothing here ever gives a message back. Each message
 * is moved through instead: taken with `basic.get`, published again (a copy with the same
 * properties and headers, to the tail of the same queue, or to the work queue when requeued) with
 * a publisher confirm and `mandatory`, and only once the broker has confirmed the copy is the
 * original acked. One pass takes exactly the messages that were in the queue when it began, so
 * the queue ends in its original order (dead letters added meanwhile come after). A crash between
 * the confirm and the ack leaves both copies: a duplicate at worst, never a loss.
 * @module
 */
import type { ChannelModel } from "../deps/amqplib.ts";
import { openConnection } from "../core/connection.ts";
import { deadQueue } from "../core/topology.ts";
import { checkQueue, serialChannels } from "./dead_letters/_channels.ts";
import type { DeadLetter } from "./dead_letters/letter.ts";
import { type Decision, type PassOptions, type PassResult, runPass } from "./dead_letters/pass.ts";

export {
  type DeadLetter,
  type DeadMessage,
  parseDeadLetter,
  type ParseOptions,
  RESET_HEADERS,
} from "./dead_letters/letter.ts";
export type { PassOptions, PassResult } from "./dead_letters/pass.ts";

/**
 * Options of {@linkcode openDeadLetters}.
 *
 * @example
 * ```ts
 * const options: DeadLettersOptions = { url, queue: "images" };
 * await using dead = await openDeadLetters(options);
 * ```
 */
export interface DeadLettersOptions {
  /** Broker URL. */
  url: string;
  /** The work queue whose dead letters these are. */
  queue: string;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Connection name shown by the broker's management tools. @default {"tareas dead letters"} */
  name?: string;
}

/**
 * The dead letters of one queue, over a connection of their own.
 *
 * @example
 * ```ts
 * await using dead: DeadLetters = await openDeadLetters({ url, queue: "images" });
 * console.log(await dead.count(), "dead letters");
 * await dead.requeue(new Set(["resize-cat.png"]));
 * ```
 */
export interface DeadLetters extends AsyncDisposable {
  /** Messages in `<queue>.dead` now (a passive declare). */
  count(): Promise<number>;
  /** Lists the dead letters (each moved through and back into place; see the module doc). */
  list(options?: PassOptions): Promise<PassResult>;
  /**
   * Sends the dead letters whose id is in `ids` (or all of them, for `"all"`) back to the work
   * queue, attempt count reset, each removed from `<queue>.dead` only once the work queue has it.
   */
  requeue(ids: ReadonlySet<string> | "all", options?: PassOptions): Promise<PassResult>;
  /** Deletes every dead letter; resolves with how many there were. */
  purge(): Promise<number>;
  /** Closes the connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Connects to the broker for the dead letters of `queue`.
 *
 * @throws {ConfigError} when the credentials are refused.
 * @throws {BrokerUnreachableError} when the broker cannot be reached.
 * @example
 * ```ts
 * await using dead = await openDeadLetters({ url, queue: "tareas_distribuidas" });
 * for (const letter of (await dead.list()).letters) console.log(letter.id, letter.reason);
 * await dead.requeue("all");
 * ```
 */
export async function openDeadLetters(options: DeadLettersOptions): Promise<DeadLetters> {
  const { queue } = options;
  const dead = deadQueue(queue);
  let model: ChannelModel | undefined;
  const connection = await openConnection({
    url: options.url,
    heartbeat: options.heartbeat ?? 15,
    name: options.name ?? "tareas dead letters",
    setup: (next) => {
      model = next;
      return Promise.resolve();
    },
  });
  const withChannels = serialChannels(() => model);
  const pass = (decide: (letter: DeadLetter) => Decision, options: PassOptions = {}) =>
    withChannels((channels) => runPass(channels, { queue, dead, decide }, options));

  const deadLetters: DeadLetters = {
    count: () =>
      withChannels(async ({ get }) =>
        (await checkQueue(get, dead, "no worker has run on this queue yet")).messageCount
      ),
    list: (options) => pass(() => "keep", options),
    requeue: (ids, options) =>
      withChannels(({ get }) => checkQueue(get, queue, "nothing to send the dead letters back to"))
        .then(() =>
          pass((letter) => ids === "all" || ids.has(letter.id) ? "requeue" : "keep", options)
        ),
    purge: () =>
      withChannels(async ({ get }) => {
        await checkQueue(get, dead, "nothing to purge");
        return (await get.purgeQueue(dead)).messageCount;
      }),
    close: () => connection.close(),
    [Symbol.asyncDispose]: () => connection.close(),
  };
  return deadLetters;
}
