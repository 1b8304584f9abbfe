/**
 * Watching a queue's events from their own connection, through a durable subscription queue, so
 * that a dropped connection or a broker restart loses no event: the subscription keeps collecting
 * while the watcher reconnects. `produce --wait` and the demo use it.
 * @module
 */
import type { ChannelModel } from "../deps/amqplib.ts";
import { type Connection, openConnection } from "../core/connection.ts";
import { SeenMessages, subscribeEvents, type TareasEvent } from "../core/events.ts";
import { log } from "../core/log.ts";

/**
 * Options of {@linkcode watchEvents}.
 *
 * @example
 * ```ts
 * const options: WatchOptions = { url, queue: "images", onEvent: (e) => console.log(e.type) };
 * await using watch = await watchEvents(options);
 * ```
 */
export interface WatchOptions {
  /** Broker URL. */
  url: string;
  /** The work queue whose events to watch. */
  queue: string;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Called once per checked event, in the order they arrive. */
  onEvent: (event: TareasEvent) => void;
}

/**
 * A running watch; see {@linkcode watchEvents}.
 *
 * @example
 * ```ts
 * const watch: EventWatch = await watchEvents({ url, queue, onEvent: console.log });
 * await Promise.race([watch.failed, new Promise((resolve) => setTimeout(resolve, 10_000))]);
 * await watch.close();
 * ```
 */
export interface EventWatch extends AsyncDisposable {
  /** Rejects when the connection gives up for good. */
  readonly failed: Promise<never>;
  /**
   * The work queue's consumers and ready messages (a passive declare: nothing is created), or
   * undefined while disconnected or when the queue does not exist.
   */
  queueCounts(): Promise<{ consumers: number; ready: number } | undefined>;
  /** Stops watching and deletes the subscription queue. Idempotent. */
  close(): Promise<void>;
}

/**
 * Subscribes to the events of `queue` and resolves once the subscription is in place: nothing
 * published after that is missed, even across reconnects. The subscription queue
 * (`<queue>.watch.<uuid>`) is deleted by {@linkcode EventWatch.close}; after a crash the broker
 * deletes it a minute after its last use.
 *
 * @example
 * ```ts
 * await using watch = await watchEvents({ url, queue, onEvent: (event) => seen.push(event) });
 * ```
 */
export async function watchEvents(options: WatchOptions): Promise<EventWatch> {
  const queueName = `${options.queue}.watch.${crypto.randomUUID()}`;
  let current: ChannelModel | undefined;
  const seen = new SeenMessages();
  const connection: Connection = await openConnection({
    url: options.url,
    heartbeat: options.heartbeat ?? 15,
    name: "tareas watch",
    setup: async (model) => {
      current = model;
      const channel = await model.createChannel();
      channel.on("error", () => {});
      await subscribeEvents(channel, options.queue, options.onEvent, {
        queueName,
        seen,
        onCancel: () => model.close().catch(() => {}),
      });
    },
  });
  log("watch").debug("Watching the events of {queue} through {watchQueue}", {
    queue: options.queue,
    watchQueue: queueName,
  });
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      try {
        const channel = await current?.createChannel();
        await channel?.deleteQueue(queueName);
      } catch {
        // Disconnected: the broker deletes the queue a minute after its last use.
      }
      await connection.close();
    })();
  const queueCounts = async () => {
    try {
      const channel = await current!.createChannel();
      channel.on("error", () => {});
      const { consumerCount, messageCount } = await channel.checkQueue(options.queue);
      await channel.close();
      return { consumers: consumerCount, ready: messageCount };
    } catch {
      return undefined;
    }
  };
  return { failed: connection.failed, queueCounts, close, [Symbol.asyncDispose]: close };
}
