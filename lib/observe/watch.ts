/**
 * Watching a queue from a connection of its own: its workers' events, checked, and its state
 * (declared or not, its counts, from passive declares), as one stream of updates read with
 * `for await`, like `Deno.watchFs`. `produce --wait`, the demo, `status` and the dashboard all
 * watch through it; a `QueueMonitor` (`monitor.ts`) is fed from it.
 *
 * Two kinds of subscription, chosen by {@linkcode WatchOptions.durable}:
 *
 * - durable (a run's watcher): a quorum queue `<queue>.watch.<uuid>`, declared at once with the
 *   events exchange, so that a dropped connection, a broker restart or a lost cluster node loses no
 *   event: the subscription keeps collecting while the watcher reconnects.
 * - exclusive (a view's watcher): declares nothing that outlives it. It checks the queue first,
 *   listens through a server-named queue once the queue and its events exchange exist, stops
 *   listening when the queue is deleted, and listens again (to what may be a new events exchange)
 *   once it is declared again.
 *
 * Memory is bounded whatever the events: past {@linkcode PREFETCH} messages waiting unread, each is
 * acked only once its events are read, so at most twice that many wait in memory and a slow
 * reader leaves the rest on the broker; states not read yet are replaced by newer ones; and the
 * message ids remembered to drop duplicates are the last 10,000.
 * @module
 */
import type { Channel, ChannelModel } from "../deps/amqplib.ts";
import { isNotFound, withChannel } from "../core/broker_errors.ts";
import { type Connection, openConnection } from "../core/connection.ts";
import { TareasError } from "../core/errors.ts";
import type { TareasEvent } from "../core/events.ts";
import { log } from "../core/log.ts";
import { asTareasError, permissionError, type QueueState, readQueueState } from "./queue_state.ts";
import { consumeEvents, SeenMessages } from "./subscribe.ts";
import { Updates } from "./_updates.ts";

export type { QueueCounts, QueueState } from "./queue_state.ts";

/**
 * Options of {@linkcode watchQueue}.
 *
 * @example
 * ```ts
 * const options: WatchOptions = { url, queue: "images", durable: true, countsEveryMs: 2_000 };
 * await using watcher = await watchQueue(options);
 * ```
 */
export interface WatchOptions {
  /** Broker URL, or a comma-separated list of a cluster's nodes. */
  url: string;
  /** The work queue to watch. */
  queue: string;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Connection name shown by the broker's management tools. @default {"tareas watch"} */
  name?: string;
  /**
   * Listen through a durable subscription queue that outlives a lost connection, so that no
   * event is missed across reconnects; it declares the events exchange (and the subscription
   * queue, deleted by {@linkcode QueueWatcher.close}, or by the broker a minute after a crash).
   * Without, through an exclusive queue that declares nothing lasting: events published while
   * disconnected are missed, and the watcher follows the queue when it is deleted and declared
   * again.
   * @default {false}
   */
  durable?: boolean;
  /**
   * How often the queue's state is read again, in ms; 0 for only on
   * {@linkcode QueueWatcher.refresh}.
   * @default {1000}
   */
  countsEveryMs?: number;
  /** Closes the watcher when aborted, as {@linkcode QueueWatcher.close} does. */
  signal?: AbortSignal;
}

/**
 * One update of a watcher: an event (checked against the schema), or the queue's state.
 *
 * @example
 * ```ts
 * for await (const update of watcher) {
 *   if (update.kind === "event") console.log(update.event.type, update.event.worker);
 *   else console.log(update.state.counts);
 * }
 * ```
 */
export type WatchUpdate =
  | { kind: "event"; event: TareasEvent }
  | { kind: "queue"; state: QueueState };

/**
 * A running watch of a queue: an async iterable of its {@linkcode WatchUpdate}s, in the order
 * they happened. The first update is the queue's state as {@linkcode watchQueue} found it; a new
 * state follows every {@linkcode WatchOptions.countsEveryMs} and after each
 * {@linkcode QueueWatcher.refresh}. The updates are read by one loop at a time; leaving a loop
 * early keeps the watcher (the next loop goes on where it left off): close it, or hold it with
 * `await using`, to end every loop.
 *
 * @example
 * ```ts
 * await using watcher = await watchQueue({ url, queue: "images" });
 * for await (const update of watcher) {
 *   if (update.kind === "event" && update.event.type === "task.dead") break;
 * }
 * ```
 */
export interface QueueWatcher extends AsyncIterable<WatchUpdate>, AsyncDisposable {
  /** The work queue watched. */
  readonly queue: string;
  /**
   * A durable watcher's subscription queue (`<queue>.watch.<uuid>`), as the broker's tools list
   * it; undefined for an exclusive one.
   */
  readonly subscription: string | undefined;
  /** The queue's state as of the last read. */
  readonly state: QueueState;
  /**
   * Reads the queue's state now rather than at the next tick (a read in progress counts), and
   * resolves with it; it also comes as an update.
   */
  refresh(): Promise<QueueState>;
  /**
   * Stops watching: every loop over the updates ends, a durable subscription queue is deleted,
   * the connection closed. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Event messages a watcher takes before it waits for its reader: the broker's prefetch, and as
 * many again waiting unread in memory. A message carries up to `MAX_EVENT_BYTES`, so at most 32
 * MiB wait, however slow the reader; a reader that keeps up (every one here does) holds a few.
 */
export const PREFETCH = 256;

/**
 * Connects, subscribes to the events of `options.queue` and reads its state; resolves once
 * subscribed (or, for a queue that does not exist yet or whose events exchange does not, once
 * its state is known: the watcher listens as soon as they do). Nothing published after that is
 * missed; with {@linkcode WatchOptions.durable}, not even across reconnects. What keeps the
 * watcher from listening or counting (a missing queue or permission) is in
 * {@linkcode QueueWatcher.state}, not thrown: a view may wait for the queue.
 *
 * @throws {ConfigError} when credentials or the virtual host are refused, or (durable) the
 * subscription queue may not be declared.
 * @throws {BrokerUnreachableError} when the broker cannot be reached.
 * @example
 * ```ts
 * await using watcher = await watchQueue({ url, queue: "tareas_distribuidas", durable: true });
 * for await (const update of watcher) {
 *   if (update.kind === "event" && update.event.type === "task.completed") break;
 * }
 * ```
 */
export async function watchQueue(options: WatchOptions): Promise<QueueWatcher> {
  options.signal?.throwIfAborted();
  const watcher = new Watcher(options);
  await watcher.start();
  return watcher;
}

class Watcher implements QueueWatcher {
  readonly queue: string;
  #options: WatchOptions;
  #durable: boolean;
  #queueName: string;
  #connection: Connection | undefined;
  #model: ChannelModel | undefined; // the current connection's
  #subscribed: ChannelModel | undefined; // the connection whose session listens
  #events: Channel | undefined; // the subscription's channel
  #seen = new SeenMessages();
  #state: QueueState = { declared: undefined, listening: false };
  #updates = new Updates<WatchUpdate>(PREFETCH);
  #reading: Promise<QueueState> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #failed = false;
  #abort = () => void this.close();

  constructor(options: WatchOptions) {
    this.queue = options.queue;
    this.#options = options;
    this.#durable = options.durable ?? false;
    this.#queueName = `${options.queue}.watch.${crypto.randomUUID()}`;
  }

  get state(): QueueState {
    return this.#state;
  }

  get subscription(): string | undefined {
    return this.#durable ? this.#queueName : undefined;
  }

  async start(): Promise<void> {
    this.#connection = await openConnection({
      url: this.#options.url,
      heartbeat: this.#options.heartbeat ?? 15,
      name: this.#options.name ?? "tareas watch",
      setup: async (model) => {
        this.#model = model;
        this.#subscribed = undefined;
        this.#events = undefined;
        model.on("close", () => {
          if (this.#subscribed === model) this.#subscribed = undefined;
        });
        if (this.#durable) await this.#subscribe(model);
        // After a reconnect: an exclusive watcher listens again at once, not at the next tick
        // (once a read begun on the connection lost is over).
        if (this.#started) {
          void Promise.resolve(this.#reading).catch(() => {}).then(() => this.refresh());
        }
      },
    });
    this.#connection.failed.catch((error) => {
      this.#failed = true;
      clearTimeout(this.#timer);
      this.#updates.fail(error);
    });
    if (this.#durable) {
      log("watch").debug("Watching the events of {queue} through {watchQueue}", {
        queue: this.queue,
        watchQueue: this.#queueName,
      });
    }
    await this.refresh();
    this.#started = true;
    this.#options.signal?.addEventListener("abort", this.#abort, { once: true });
    if (this.#options.signal?.aborted) void this.close();
    this.#tick();
  }

  refresh(): Promise<QueueState> {
    if (this.#closed) return Promise.resolve(this.#state);
    return this.#reading ??= this.#read().finally(() => this.#reading = undefined);
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#closed = true;
      clearTimeout(this.#timer);
      this.#options.signal?.removeEventListener("abort", this.#abort);
      this.#updates.end();
      if (this.#durable && this.#model !== undefined) {
        // Disconnected, it stays: the broker deletes it a minute after its last use.
        await withChannel(this.#model, (channel) => channel.deleteQueue(this.#queueName))
          .catch(() => {});
      }
      await this.#connection?.close();
      await this.#reading?.catch(() => {});
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchUpdate> {
    return { next: () => this.#updates.next() };
  }

  #tick(): void {
    const every = this.#options.countsEveryMs ?? 1000;
    if (every <= 0 || this.#closed || this.#failed) return;
    this.#timer = setTimeout(() => this.refresh().then(() => this.#tick()), every);
  }

  #listening(): boolean {
    return this.#subscribed !== undefined && this.#subscribed === this.#model;
  }

  async #subscribe(model: ChannelModel): Promise<void> {
    const channel = await model.createChannel();
    channel.on("error", () => {});
    try {
      const push = (events: TareasEvent[], taken: () => void) =>
        this.#updates.push(events.map((event) => ({ kind: "event", event })), taken);
      await consumeEvents(channel, this.queue, push, {
        seen: this.#seen,
        prefetch: PREFETCH,
        onCancel: () => model.close().catch(() => {}),
        ...(this.#durable ? { queueName: this.#queueName } : { declare: false }),
      });
    } catch (error) {
      await channel.close().catch(() => {});
      throw permissionError(error, this.queue) ?? error;
    }
    this.#events = channel;
    this.#subscribed = model;
  }

  /**
   * Stops listening: the queue is gone, and whatever declares it again may declare a new events
   * exchange, which the old binding would not follow. Closing the channel cancels the consumer,
   * and the broker deletes its auto-delete queue.
   */
  async #unsubscribe(): Promise<void> {
    const channel = this.#events;
    this.#events = undefined;
    this.#subscribed = undefined;
    await channel?.close().catch(() => {});
  }

  /** Reads the queue's state; for an exclusive watcher, starts or stops listening to match. */
  async #read(): Promise<QueueState> {
    const model = this.#model;
    let state: QueueState;
    if (model === undefined) {
      state = { declared: undefined, listening: false, error: new TareasError("Not connected") };
    } else {
      state = await readQueueState(model, this.queue);
      if (!this.#durable && model === this.#model) {
        if (state.declared === false) {
          await this.#unsubscribe();
        } else if (state.declared === true && !this.#listening()) {
          try {
            await this.#subscribe(model);
          } catch (error) {
            // No events exchange yet: no tareas worker has run on this queue; listen later.
            if (!isNotFound(error)) state.error ??= asTareasError(error, this.queue);
          }
        }
      }
      state.listening = this.#listening();
    }
    if (!this.#closed) {
      this.#state = state;
      this.#updates.latest({ kind: "queue", state });
    }
    return state;
  }
}
