/**
 * What a watcher knows of its queue apart from the events: whether it exists, its counts, and, when
 * it cannot tell, why, in one line that names what to do (the queue was not set up by tareas, a
 * permission is missing). Read with passive declares only: nothing is created.
 * @module
 */
import type { ChannelModel } from "../deps/amqplib.ts";
import { isAccessRefused, isNotFound, withChannel } from "../core/broker_errors.ts";
import { ConfigError, errorMessage, TareasError } from "../core/errors.ts";
import { deadQueue } from "../core/topology.ts";

/**
 * Counts of a queue from passive declares.
 *
 * @example
 * ```ts
 * const counts: QueueCounts | undefined = watcher.state.counts;
 * if (counts?.consumers === 0) console.warn("nothing consumes the queue");
 * ```
 */
export interface QueueCounts {
  /** Messages ready for delivery in the work queue. */
  ready: number;
  /** Consumers of the work queue. */
  consumers: number;
  /** Messages in the dead-letter queue. */
  dead: number;
}

/**
 * What a watcher knows of its queue, as of its last read.
 *
 * @example
 * ```ts
 * const { state } = watcher;
 * if (state.declared === false) console.log("waiting for the queue to be declared");
 * else if (state.error) console.log(state.error.message);
 * else console.log(state.counts);
 * ```
 */
export interface QueueState {
  /**
   * Whether the queue exists: false while nothing has declared it yet, or since it was deleted;
   * undefined when the broker could not tell (disconnected, or a permission is missing).
   */
  declared: boolean | undefined;
  /** The queue's counts, when it exists and was set up by tareas. */
  counts?: QueueCounts;
  /** Whether events are being received (false while the events exchange does not exist). */
  listening: boolean;
  /**
   * Why the counts, or the events, are missing: a {@linkcode ConfigError} when the queue does
   * not exist, was not set up by tareas, or a permission is missing (it names which), a
   * {@linkcode TareasError} when disconnected.
   */
  error?: TareasError;
}

/**
 * The state of `queue` (not listening) from passive declares of it and its dead-letter queue on
 * a channel of their own: its counts, or why there are none.
 *
 * @example
 * ```ts
 * const { declared, counts } = await readQueueState(model, "tareas_distribuidas");
 * ```
 */
export async function readQueueState(
  model: Pick<ChannelModel, "createChannel">,
  queue: string,
): Promise<QueueState> {
  let main: { messageCount: number; consumerCount: number } | undefined;
  try {
    const counts = await withChannel(model, async (channel) => {
      main = await channel.checkQueue(queue);
      const dead = await channel.checkQueue(deadQueue(queue));
      return { ready: main.messageCount, consumers: main.consumerCount, dead: dead.messageCount };
    });
    return { declared: true, counts, listening: false };
  } catch (error) {
    if (!isNotFound(error)) {
      return { declared: undefined, listening: false, error: asTareasError(error, queue) };
    }
    if (main === undefined) {
      return {
        declared: false,
        listening: false,
        error: new ConfigError(`Queue "${queue}" does not exist: nothing has declared it yet`),
      };
    }
    return {
      declared: true,
      listening: false,
      error: new ConfigError(
        `Queue "${queue}" was not set up by tareas: it has no dead-letter queue ` +
          `"${deadQueue(queue)}", so it is probably a classic queue made by the original ` +
          `scripts (${main.messageCount} messages ready); tareas needs a quorum queue: ` +
          `deno task migrate --queue ${queue} moves its messages into one`,
      ),
    };
  }
}

/** A broker's refusal as the one line that names the permission missing; else its message. */
export function asTareasError(error: unknown, queue: string): TareasError {
  if (error instanceof TareasError) return error;
  return permissionError(error, queue) ?? new TareasError(errorMessage(error), { cause: error });
}

/**
 * A one-line {@linkcode ConfigError} naming the permission the broker refused, or undefined when
 * `error` is not a refusal.
 */
export function permissionError(error: unknown, queue: string): ConfigError | undefined {
  if (!isAccessRefused(error)) return undefined;
  const text = error instanceof Error ? error.message : String(error);
  const detail =
    /access to (queue|exchange) '([^']*)' in vhost '([^']*)' refused for user '([^']*)'/
      .exec(text);
  if (detail === null) {
    return new ConfigError(
      `The broker refused an operation on queue "${queue}" (ACCESS_REFUSED): ` +
        `${text.replace(/^.*?ACCESS_REFUSED - /, "").split("\n")[0]}`,
      { cause: error },
    );
  }
  const [, kind, name, vhost, user] = detail;
  const needed = kind === "exchange"
    ? `read permission on exchange "${name}"`
    : name!.startsWith("amq.gen-")
    ? `configure, write and read permissions on server-named queues (amq.gen-.*) to listen ` +
      `to the events of "${queue}"`
    : `permissions on queue "${name}"`;
  return new ConfigError(
    `User "${user}" may not use ${kind} "${name}" in virtual host "${vhost}" ` +
      `(ACCESS_REFUSED): it needs ${needed}`,
    { cause: error },
  );
}
