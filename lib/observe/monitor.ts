/**
 * What `status` and the dashboard show, in one model: a queue's counts from passive declares, and
 * its workers from the events they publish (`worker.online`, `worker.status` every
 * {@linkcode STATUS_INTERVAL_MS}, `task.*`, `worker.offline`). {@linkcode QueueMonitor} is a pure
 * model: its user feeds it the updates of a watcher (`watch.ts`).
 *
 * Every event field is untrusted: numbers that are not small non-negative integers count as
 * absent, names are bounded in length, and the number of workers tracked is capped.
 * @module
 */
import { STATUS_INTERVAL_MS, type TareasEvent } from "../core/events.ts";
import type { QueueCounts } from "./queue_state.ts";
import { type RunningTask, RunningTasks } from "./running.ts";

export type { RunningTask } from "./running.ts";

/**
 * A worker's state: `online` while it reports, `lost` when it was online and then sent neither
 * `worker.offline` nor anything else for {@linkcode MonitorOptions.lostAfterMs} (killed, cut off),
 * `offline` after its `worker.offline`.
 * @example
 * ```ts
 * const lost = monitor.snapshot().workers.filter((w) => w.state === ("lost" as WorkerState));
 * ```
 */
export type WorkerState = "online" | "lost" | "offline";

/**
 * One worker as the monitor sees it.
 *
 * @example
 * ```ts
 * for (const worker of monitor.snapshot().workers as WorkerView[]) {
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
  /**
   * The tasks it is running, with the progress each last reported (`task.progress`), by `seq`;
   * empty unless it is online. Tasks that end within 10 ms are never seen running.
   */
  running: RunningTask[];
}

/**
 * One snapshot of a queue and its workers. The fields of `status --json`.
 *
 * @example
 * ```ts
 * const snapshot: MonitorSnapshot = monitor.snapshot();
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
  #running = new RunningTasks();
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
    if (event.type.startsWith("task.")) {
      this.#running.observe(name === event.worker ? event : { ...event, worker: name });
    }
    switch (event.type) {
      case "worker.online":
      case "worker.status":
        worker.offline = false;
        worker.reported = true;
        worker.inHand = count(record.inHand) ?? worker.inHand;
        worker.completed = count(record.completed) ?? worker.completed;
        worker.failed = count(record.failed) ?? worker.failed;
        worker.lastMinute = count(record.lastMinute) ?? worker.lastMinute;
        // Holding nothing: what it ran before ended, even if that end was not heard.
        if (record.inHand === 0) this.#running.dropWorker(name, event.at);
        break;
      case "worker.offline":
        worker.offline = true;
        worker.inHand = 0;
        worker.completed = count(record.completed) ?? worker.completed;
        worker.failed = count(record.failed) ?? worker.failed;
        this.#running.dropWorker(name);
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
    const running = this.#running.byWorker();
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
        running: state === "online" ? running.get(worker.name) ?? [] : [],
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
