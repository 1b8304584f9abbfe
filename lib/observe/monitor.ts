/**
 * What `status` and the dashboard show, in one model: a queue's counts from passive declares, and
 * its workers from the events they publish (`worker.online`, `worker.status` every
 * {@linkcode STATUS_INTERVAL_MS}, `task.*`, `worker.offline`). {@linkcode QueueMonitor} is the pure
 * model; {@linkcode watchQueue} feeds it from a broker without declaring anything lasting.
 *
 * Every event field is untrusted: numbers that are not small non-negative integers count as
 * absent, names are bounded in length, and the number of workers tracked is capped.
 * @module
 */
import type { Channel, ChannelModel } from "../deps/amqplib.ts";
import { openConnection } from "../core/connection.ts";
import { ConfigError, TareasError } from "../core/errors.ts";
import {
  eventsExchange,
  STATUS_INTERVAL_MS,
  subscribeEvents,
  type TareasEvent,
} from "../core/events.ts";
import { deadQueue } from "../core/topology.ts";

/**
 * A worker's state: `online` while it reports, `lost` when it was online and then sent neither
 * `worker.offline` nor anything else for {@linkcode MonitorOptions.lostAfterMs} (killed, cut off),
 * `offline` after its `worker.offline`.
 * @example
 * ```ts
 * const lost = watch.monitor.snapshot().workers.filter((w) => w.state === ("lost" as WorkerState));
 * ```
 */
export type WorkerState = "online" | "lost" | "offline";

/**
 * One worker as the monitor sees it.
 *
 * @example
 * ```ts
 * for (const worker of watch.monitor.snapshot().workers as WorkerView[]) {
 *   console.log(worker.name, worker.state, worker.inHand);
 * }
 * ```
 */
export interface WorkerView {
  /** The worker's name, at most {@linkcode MAX_NAME_LENGTH} characters (longer ones are cut). */
  name: string;
  /** See {@linkcode WorkerState}. */
  state: WorkerState;
  /** When its last event arrived here (this machine's clock), ISO 8601. */
  lastSeen: string;
  /** Deliveries it holds unacked, from its last `worker.status` (0 once offline). */
  inHand: number;
  /** Tasks it completed since it started. */
  completed: number;
  /** Failed attempts since it started. */
  failed: number;
  /** The broker node it is connected to, when its events say so. */
  node?: string;
}

/**
 * Counts of a queue from passive declares.
 *
 * @example
 * ```ts
 * const counts: QueueCounts = await watch.refresh();
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
 * One snapshot of a queue and its workers. The fields of `status --json`.
 *
 * @example
 * ```ts
 * const snapshot: MonitorSnapshot = watch.monitor.snapshot();
 * console.log(snapshot.ready, snapshot.workers.length);
 * ```
 */
export interface MonitorSnapshot {
  /** The work queue. */
  queue: string;
  /** When the snapshot was taken, ISO 8601. */
  at: string;
  /** Messages ready for delivery. */
  ready: number;
  /** Messages delivered and not yet acked, as reported by the workers online. */
  unacked: number;
  /** Consumers attached to the queue. */
  consumers: number;
  /** Messages in the dead-letter queue. */
  dead: number;
  /** Tasks completed in the last minute by the workers online, per second. */
  ratePerSecond: number;
  /** The workers tracked: online first, then lost, then offline; most recently seen first. */
  workers: WorkerView[];
  /** Worker names forgotten because more than {@linkcode MonitorOptions.maxWorkers} were seen. */
  workersDropped: number;
}

/**
 * Options of {@linkcode QueueMonitor}.
 *
 * @example
 * ```ts
 * const monitor = new QueueMonitor("images", { lostAfterMs: 10_000, maxWorkers: 100 });
 * ```
 */
export interface MonitorOptions {
  /**
   * A worker silent this long after its last event is `lost`.
   * @default {3 × STATUS_INTERVAL_MS}
   */
  lostAfterMs?: number;
  /**
   * A lost or offline worker is forgotten this long after its last event.
   * @default {600_000}
   */
  forgetAfterMs?: number;
  /**
   * Most workers tracked; beyond it the one seen least recently is dropped (and counted).
   * @default {1000}
   */
  maxWorkers?: number;
}

/** Longest worker or node name kept; longer names are cut and end with `…`. */
export const MAX_NAME_LENGTH = 200;

interface Tracked {
  name: string;
  lastMs: number;
  offline: boolean;
  inHand: number;
  completed: number;
  failed: number;
  lastMinute: number;
  reported: boolean;
  node?: string;
}

const STATE_ORDER: Record<WorkerState, number> = { online: 0, lost: 1, offline: 2 };

/**
 * The state of one queue and its workers, built from events and counts.
 *
 * @example
 * ```ts
 * const monitor = new QueueMonitor("tareas_distribuidas");
 * monitor.observe(event);
 * monitor.setCounts({ ready: 3, consumers: 1, dead: 0 });
 * console.log(monitor.snapshot().workers);
 * ```
 */
export class QueueMonitor {
  /** The work queue watched. */
  readonly queue: string;
  #workers = new Map<string, Tracked>(); // least recently seen first
  #counts: QueueCounts = { ready: 0, consumers: 0, dead: 0 };
  #dropped = 0;
  #lostAfterMs: number;
  #forgetAfterMs: number;
  #maxWorkers: number;

  /** Creates an empty model of `queue`. */
  constructor(queue: string, options: MonitorOptions = {}) {
    this.queue = queue;
    this.#lostAfterMs = options.lostAfterMs ?? 3 * STATUS_INTERVAL_MS;
    this.#forgetAfterMs = options.forgetAfterMs ?? 600_000;
    this.#maxWorkers = Math.max(1, options.maxWorkers ?? 1000);
  }

  /** Takes in one event, received at `receivedAt` (ms since the epoch, this machine's clock). */
  observe(event: TareasEvent, receivedAt: number = Date.now()): void {
    if (typeof event.worker !== "string" || event.worker === "") return;
    const name = bounded(event.worker);
    let worker = this.#workers.get(name);
    if (worker === undefined) {
      worker = {
        name,
        lastMs: receivedAt,
        offline: false,
        inHand: 0,
        completed: 0,
        failed: 0,
        lastMinute: 0,
        reported: false,
      };
    } else {
      this.#workers.delete(name); // re-inserted below: the map stays ordered by last event
    }
    this.#workers.set(name, worker);
    worker.lastMs = Math.max(worker.lastMs, receivedAt);
    const record = event as unknown as Record<string, unknown>;
    if (typeof record.node === "string" && record.node !== "") worker.node = bounded(record.node);
    switch (event.type) {
      case "worker.online":
      case "worker.status":
        worker.offline = false;
        worker.reported = true;
        worker.inHand = count(record.inHand) ?? worker.inHand;
        worker.completed = count(record.completed) ?? worker.completed;
        worker.failed = count(record.failed) ?? worker.failed;
        worker.lastMinute = count(record.lastMinute) ?? worker.lastMinute;
        break;
      case "worker.offline":
        worker.offline = true;
        worker.inHand = 0;
        worker.completed = count(record.completed) ?? worker.completed;
        worker.failed = count(record.failed) ?? worker.failed;
        break;
      case "task.completed":
        worker.offline = false;
        worker.completed++;
        break;
      case "task.failed":
        worker.offline = false;
        worker.failed++;
        break;
      default:
        worker.offline = false;
    }
    while (this.#workers.size > this.#maxWorkers) {
      const oldest = this.#workers.keys().next().value;
      if (oldest === undefined) break;
      this.#workers.delete(oldest);
      this.#dropped++;
    }
  }

  /** Sets the queue counts (from passive declares); values that are not counts become 0. */
  setCounts(counts: QueueCounts): void {
    this.#counts = {
      ready: count(counts.ready) ?? 0,
      consumers: count(counts.consumers) ?? 0,
      dead: count(counts.dead) ?? 0,
    };
  }

  /** The last counts given to {@linkcode setCounts}. */
  get counts(): QueueCounts {
    return { ...this.#counts };
  }

  /** Workers online that have reported their counts (a `worker.online` or `worker.status`). */
  reportedOnline(now: number = Date.now()): number {
    let n = 0;
    for (const worker of this.#workers.values()) {
      if (worker.reported && this.#state(worker, now) === "online") n++;
    }
    return n;
  }

  /** The state of the queue and its workers at `now`; forgets workers gone for long. */
  snapshot(now: number = Date.now()): MonitorSnapshot {
    for (const [name, worker] of this.#workers) {
      if (now - worker.lastMs <= this.#forgetAfterMs) break; // the rest were seen later
      this.#workers.delete(name);
    }
    const workers: (WorkerView & { lastMs: number; lastMinute: number })[] = [];
    let unacked = 0;
    let lastMinute = 0;
    for (const worker of this.#workers.values()) {
      const state = this.#state(worker, now);
      if (state === "online") {
        unacked += worker.inHand;
        lastMinute += worker.lastMinute;
      }
      const view: WorkerView & { lastMs: number; lastMinute: number } = {
        name: worker.name,
        state,
        lastSeen: new Date(worker.lastMs).toISOString(),
        inHand: state === "offline" ? 0 : worker.inHand,
        completed: worker.completed,
        failed: worker.failed,
        lastMs: worker.lastMs,
        lastMinute: worker.lastMinute,
      };
      if (worker.node !== undefined) view.node = worker.node;
      workers.push(view);
    }
    workers.sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.lastMs - a.lastMs);
    return {
      queue: this.queue,
      at: new Date(now).toISOString(),
      ...this.#counts,
      unacked,
      ratePerSecond: Math.round((lastMinute / 60) * 1000) / 1000,
      workers: workers.map(({ lastMs: _, lastMinute: __, ...view }) => view),
      workersDropped: this.#dropped,
    };
  }

  #state(worker: Tracked, now: number): WorkerState {
    if (worker.offline) return "offline";
    return now - worker.lastMs > this.#lostAfterMs ? "lost" : "online";
  }
}

/** A count from an untrusted field: a non-negative safe integer, else undefined. */
function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

function bounded(text: string): string {
  return text.length <= MAX_NAME_LENGTH ? text : `${text.slice(0, MAX_NAME_LENGTH - 1)}…`;
}

// ---------------------------------------------------------------------------------------------
// Feeding the model from a broker

/**
 * Options of {@linkcode watchQueue}.
 *
 * @example
 * ```ts
 * const options: QueueWatchOptions = { url, queue: "images", onEvent: (e) => console.log(e.type) };
 * await using watch = await watchQueue(options);
 * ```
 */
export interface QueueWatchOptions extends MonitorOptions {
  /** Broker URL. */
  url: string;
  /** The work queue to watch. */
  queue: string;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Connection name shown by the broker's management tools. @default {"tareas monitor"} */
  name?: string;
  /** Called after the model took in each event. */
  onEvent?: (event: TareasEvent) => void;
}

/**
 * A live {@linkcode QueueMonitor} fed from a broker.
 *
 * @example
 * ```ts
 * await using watch: QueueWatch = await watchQueue({ url, queue: "images" });
 * await watch.refresh();
 * console.log(watch.monitor.snapshot());
 * ```
 */
export interface QueueWatch extends AsyncDisposable {
  /** The model. */
  readonly monitor: QueueMonitor;
  /** Whether events are being received (false while `<queue>.events` does not exist). */
  readonly listening: boolean;
  /**
   * Whether the queue existed at the last {@linkcode QueueWatch.refresh}: false while nothing has
   * declared it yet, or since it was deleted; undefined before the first refresh and when the
   * last one could not tell (disconnected). A long-running view keeps refreshing and says it is
   * waiting while this is false.
   */
  readonly declared: boolean | undefined;
  /**
   * Reads the counts of the queue and its dead-letter queue with passive declares, gives them to
   * the model, and starts listening to events if the events exchange exists by now. When the
   * queue is gone, stops listening until it is declared again (its events exchange may be new).
   *
   * @throws {ConfigError} when the queue does not exist ({@linkcode QueueWatch.declared} is then
   * false), was not set up by tareas, or a permission is missing.
   */
  refresh(): Promise<QueueCounts>;
  /** Closes the connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Connects and watches `queue`: checks the queue first, then listens to its events if its events
 * exchange exists. Declares nothing that outlives it: passive declares only, and an exclusive,
 * auto-deleted server-named queue bound to the events exchange once that exchange exists.
 *
 * @throws {ConfigError} see {@linkcode QueueWatch.refresh}; also refused credentials.
 * @throws {BrokerUnreachableError} when the broker cannot be reached.
 * @example
 * ```ts
 * await using watch = await watchQueue({ url, queue: "tareas_distribuidas" });
 * console.log(watch.monitor.snapshot());
 * ```
 */
export async function watchQueue(options: QueueWatchOptions): Promise<QueueWatch> {
  const { queue } = options;
  const monitor = new QueueMonitor(queue, options);
  let model: ChannelModel | undefined;
  let inspect: Promise<Channel> | undefined;
  let wantEvents = false;
  let subscribed: ChannelModel | undefined; // the connection whose session is subscribed
  let subscribing: Promise<void> | undefined;
  let events: Channel | undefined; // the subscription's channel
  let declared: boolean | undefined;

  const onEvent = (event: TareasEvent) => {
    monitor.observe(event);
    options.onEvent?.(event);
  };

  /** A channel for passive declares; a 404 closes it, so it is reopened on demand. */
  const channel = (): Promise<Channel> => {
    if (model === undefined) return Promise.reject(new TareasError("Not connected", 1));
    const current = model;
    return inspect ??= current.createChannel().then((ch) => {
      ch.on("error", () => {});
      ch.on("close", () => {
        if (model === current) inspect = undefined;
      });
      return ch;
    }, (error) => {
      inspect = undefined;
      throw error;
    });
  };

  /** Passive declare; undefined when the queue (or exchange) does not exist. */
  const passive = async <T>(check: (ch: Channel) => Promise<T>): Promise<T | undefined> => {
    const ch = await channel();
    try {
      return await check(ch);
    } catch (error) {
      if (/NOT[-_]FOUND|404/.test(String(error))) {
        if (inspect !== undefined && (await inspect.catch(() => undefined)) === ch) {
          inspect = undefined; // the broker closed this channel with the 404
        }
        return undefined;
      }
      throw permissionError(error, queue) ?? error;
    }
  };

  const subscribe = async (current: ChannelModel): Promise<void> => {
    if (subscribed === current) return;
    const exists = await passive((ch) => ch.checkExchange(eventsExchange(queue)));
    if (exists === undefined || model !== current) return;
    const channel = await current.createChannel();
    channel.on("error", () => {});
    try {
      await subscribeEvents(channel, queue, onEvent, {
        declare: false,
        onCancel: () => current.close().catch(() => {}),
      });
    } catch (error) {
      throw permissionError(error, queue) ?? error;
    }
    events = channel;
    subscribed = current;
  };

  /**
   * Stops listening: the queue is gone, and whatever declares it again may declare a new events
   * exchange, which the old binding would not follow. Closing the channel cancels the consumer,
   * and the broker deletes its auto-delete queue.
   */
  const unsubscribe = async (): Promise<void> => {
    await subscribing?.catch(() => {});
    const channel = events;
    events = undefined;
    subscribed = undefined;
    await channel?.close().catch(() => {});
  };

  const trySubscribe = (current: ChannelModel) => {
    subscribing ??= subscribe(current).finally(() => subscribing = undefined);
    return subscribing;
  };

  const connection = await openConnection({
    url: options.url,
    heartbeat: options.heartbeat ?? 15,
    name: options.name ?? "tareas monitor",
    setup: async (next) => {
      model = next;
      inspect = undefined;
      subscribed = undefined;
      events = undefined;
      if (wantEvents) await trySubscribe(next);
    },
  });

  const refresh = async (): Promise<QueueCounts> => {
    const main = await passive((ch) => ch.checkQueue(queue)).catch((error) => {
      declared = undefined; // the broker did not say
      throw error;
    });
    declared = main !== undefined;
    if (main === undefined) {
      wantEvents = false;
      if (events !== undefined || subscribing !== undefined) await unsubscribe();
      throw new ConfigError(`Queue "${queue}" does not exist: nothing has declared it yet`);
    }
    const dead = await passive((ch) => ch.checkQueue(deadQueue(queue)));
    if (dead === undefined) {
      throw new ConfigError(
        `Queue "${queue}" was not set up by tareas: it has no dead-letter queue ` +
          `"${deadQueue(queue)}", so it is probably a classic queue made by the original scripts ` +
          `(${main.messageCount} messages ready); tareas needs a quorum queue: ` +
          `deno task migrate --queue ${queue} moves its messages into one`,
      );
    }
    const counts = {
      ready: main.messageCount,
      consumers: main.consumerCount,
      dead: dead.messageCount,
    };
    monitor.setCounts(counts);
    wantEvents = true;
    if (model !== undefined) await trySubscribe(model);
    return counts;
  };

  const watch: QueueWatch = {
    monitor,
    get listening() {
      return subscribed !== undefined && subscribed === model;
    },
    get declared() {
      return declared;
    },
    refresh,
    close: () => connection.close(),
    [Symbol.asyncDispose]: () => connection.close(),
  };
  return watch;
}

/**
 * A one-line {@linkcode ConfigError} naming the permission the broker refused, or undefined when
 * `error` is not a refusal.
 */
function permissionError(error: unknown, queue: string): ConfigError | undefined {
  const text = error instanceof Error ? error.message : String(error);
  if (!/ACCESS[-_]REFUSED|403/.test(text)) return undefined;
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
