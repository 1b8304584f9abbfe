/**
 * `deno task verify` as a library: proves on a broker that a task survives the loss of whatever
 * runs it. It starts the real worker program as child processes on a fresh queue, publishes tasks
 * of simulated work (confirmed, awaited, their results heard through the producer's reply
 * queue), SIGKILLs a busy worker at evenly spaced points of the run (starting a new one each
 * time), optionally kills the broker (or the queue leader's node) with kill -9 once and restarts
 * it, then judges every completion heard against what it published (`checker.ts`).
 *
 * What it hears, and from where:
 * - results, through the producer's durable reply queue: a worker publishes each one, confirmed,
 *   before it acks the task, so a task that completed is never missed, not even across a broker
 *   crash. They say which tasks completed.
 * - events, through a durable watcher: who ran what, when, how often. They say which tasks ran
 *   more than once, what was in hand on a killed worker, and how long until it started elsewhere.
 *
 * When results stop coming before every task has one, the run has settled (the queue has nothing
 * ready, every worker reports nothing in hand) or stalled (nothing at all happens for a while);
 * verify then stops the workers and reads back what is left in the queues, so that a task it calls
 * lost is in none of them.
 * @module
 */
import { errorMessage, TareasError } from "../../core/errors.ts";
import type { TareasEvent } from "../../core/events.ts";
import { createProducer, type Producer } from "../../core/producer/mod.ts";
import type { TaskResult } from "../../core/results.ts";
import { printable } from "../../core/text.ts";
import { type QueueState, type QueueWatcher, watchQueue } from "../../observe/watch.ts";
import {
  Admin,
  type BrokerMode,
  type BrokerVersion,
  openRunBroker,
  type RunBroker,
} from "./broker.ts";
import { check, type Fault, type Published, type Verdict } from "./checker.ts";
import { randomPayload } from "./work.ts";
import { type WorkerCommand, WorkerPool, type WorkerProcess } from "./workers.ts";

export type { BrokerMode } from "./broker.ts";
export type { Duplicate, Fault, Run, Verdict } from "./checker.ts";
export { type WorkerCommand, workerCommand } from "./workers.ts";

/** The handler module the workers run. */
const HANDLER = new URL("./_handler.ts", import.meta.url).pathname;

/** How long the workers may take to come online. */
const ONLINE_TIMEOUT_MS = 60_000;

/**
 * How long the run must stay idle (nothing ready in the queue, nothing in any worker's hands, no
 * event) with tasks missing before verify looks for them: three of the workers' status reports.
 */
const SETTLE_MS = 3_000;

/** How long with no task event and no result at all, beyond the longest task, before giving up. */
const STALL_MS = 60_000;

/** How much of a task's work must be left for a SIGKILL to land in its middle; see `#killOne`. */
const MIN_LEFT_MS = 25;

/** Tasks published at once, each batch confirmed before the next. */
const PUBLISH_BATCH = 1_000;

/**
 * Options of {@linkcode runVerify}.
 *
 * @example
 * ```ts
 * const options: VerifyOptions = {
 *   url: "amqp://guest:guest@127.0.0.1:5672",
 *   queue: "tareas_verify_1a2b3c4d",
 *   tasks: 1000, workers: 4, kills: 20, durationMs: { min: 10, max: 200 },
 *   prefetch: 1, concurrency: 1, heartbeat: 15, mode: "given",
 *   worker: workerCommand("deno run --allow-all worker.ts", "/repo/"),
 *   tareasVersion: "0.3.0",
 * };
 * ```
 */
export interface VerifyOptions {
  /** The broker at `AMQP_URL` (used when `mode` is `"given"`). */
  url: string;
  /** The run's queue: it must not exist; it is deleted at the end. */
  queue: string;
  /** Tasks to publish. */
  tasks: number;
  /** Workers running at once. */
  workers: number;
  /** SIGKILLs of a busy worker, spread evenly over the run. */
  kills: number;
  /** Simulated work of each task: a random whole number of ms from `min` to `max`. */
  durationMs: { min: number; max: number };
  /** `--prefetch` of each worker. */
  prefetch: number;
  /** `--concurrency` of each worker. */
  concurrency: number;
  /** AMQP heartbeat of every connection, in seconds. */
  heartbeat: number;
  /** The broker at `url`, or a private node (`restart`) or cluster (`cluster`) killed once. */
  mode: BrokerMode;
  /** How to run the worker program (`deno task work`'s command). */
  worker: WorkerCommand;
  /** The version of tareas, for the report. */
  tareasVersion: string;
  /** Aborting it stops the run and cleans up; `runVerify` then rejects with a {@linkcode VerifyStoppedError}. */
  signal?: AbortSignal;
  /** Hears a line of what happens, as it happens. */
  onNarrate?: (line: string) => void;
}

/** A SIGKILL of a worker, as the report shows it. */
export interface KillRecord {
  /** The worker killed. */
  worker: string;
  /** When, in ms since the first task was published. */
  atMs: number;
  /** The ids of the tasks it had started and not finished, by its events. */
  inHand: string[];
}

/** What a run found, for {@linkcode renderReport} (`report.ts`) or as JSON. */
export interface VerifyReport {
  /** What was asked. */
  settings: Omit<VerifyOptions, "url" | "worker" | "tareasVersion" | "signal" | "onNarrate">;
  /** The broker: what it is and the version it announced. */
  broker: BrokerVersion & { describe: string };
  /** The version of tareas. */
  tareas: string;
  /** The judgement. */
  verdict: Verdict;
  /** The SIGKILLs of workers, in order. */
  kills: KillRecord[];
  /** The kill -9 of the broker or the leader's node, when there was one. */
  brokerKill?: {
    /** `broker` or `node` (a cluster's queue leader). */
    kind: "broker" | "node";
    /** The node's name. */
    node: string;
    /** When, in ms since the first task was published. */
    atMs: number;
    /** How long from the kill until it took connections again. */
    restartMs: number;
  };
  /** How the run ended: every task heard of, idle with tasks missing, or nothing happening. */
  end: "completed" | "settled" | "stalled";
  /** Ms from the first task published to the last result heard. */
  elapsedMs: number;
  /** Ms to publish every task and have it confirmed. */
  publishMs: number;
  /** Workers that exited on their own (not killed or stopped by verify), with their last lines. */
  workerExits: { worker: string; code: number; tail: string[] }[];
  /** Names of workers verify did not start whose events it heard (something else consumes). */
  foreignWorkers: string[];
}

/**
 * Thrown by {@linkcode runVerify} when its signal aborted the run: nothing was verified; what it
 * had created was cleaned up.
 */
export class VerifyStoppedError extends TareasError {
  /** Creates it with the number of tasks completed so far. */
  constructor(completed: number, tasks: number) {
    super(
      `Stopped before the end (${completed} of ${tasks} tasks had completed): nothing verified; ` +
        "its queue, workers and any private broker are cleaned up",
    );
    this.name = "VerifyStoppedError";
  }
}

/**
 * Runs a verification; see the module documentation. Resolves with the report whatever it found
 * (look at `verdict.ok`); always deletes what it created.
 *
 * @throws {UsageError} when the queue exists, or a private broker is asked for without
 *   rabbitmq-server.
 * @throws {VerifyStoppedError} when `signal` aborts the run.
 * @throws {TareasError} when the run cannot go on: the broker unreachable, workers that do not
 *   come online or keep exiting.
 * @example
 * ```ts
 * const report = await runVerify(options);
 * console.log(renderReport(report));
 * ```
 */
export async function runVerify(options: VerifyOptions): Promise<VerifyReport> {
  options.signal?.throwIfAborted();
  const run = new VerifyRun(options);
  return await run.start();
}

/** Per worker, what its events say. */
interface WorkerView {
  online: boolean;
  offline: boolean;
  /** Tasks it started and has not finished: when each started (epoch ms, by its event). */
  open: Map<string, number>;
  /** Its last `worker.status` report of deliveries in hand, and when it was heard. */
  inHand: number | undefined;
  heardAt: number;
}

class VerifyRun {
  #options: VerifyOptions;
  #say: (line: string) => void;
  #published: Published[] = [];
  /** Each task's simulated work, in ms. */
  #workMs = new Map<string, number>();
  #expected = new Set<string>();
  #confirmed = new Set<string>();
  #refused = new Map<string, string>();
  #results = new Map<string, TaskResult>();
  #events: TareasEvent[] = [];
  #views = new Map<string, WorkerView>();
  #faults: Fault[] = [];
  #kills: KillRecord[] = [];
  #brokerKill: VerifyReport["brokerKill"];
  #workerExits: VerifyReport["workerExits"] = [];
  #queueState: { state: QueueState; heardAt: number } | undefined;
  #lastActivity = Date.now();
  #lastResultAt = 0;
  #startedAt = 0;
  #publishMs = 0;
  #publishingDone = false;
  #faultRunning = false;
  #faultDone = false;
  #failure: unknown;
  #wake = Promise.withResolvers<void>();
  /** Results of the run's tasks heard so far. */
  #completedCount = 0;
  /** Confirmed tasks with no result yet. */
  #missingCount = 0;
  /** What the run opened or created, for the clean-up; `queue` once it is the run's own. */
  #own: {
    broker?: RunBroker;
    admin?: Admin;
    watcher?: QueueWatcher;
    producer?: Producer;
    pool?: WorkerPool;
    replyQueue?: string;
    queue?: boolean;
  } = {};
  #version: BrokerVersion | undefined;
  /** Rejects once the signal aborts. */
  #aborted: Promise<never>;

  constructor(options: VerifyOptions) {
    this.#options = options;
    this.#say = options.onNarrate ?? (() => {});
    const signal = options.signal;
    this.#aborted = new Promise((_, reject) => {
      if (signal === undefined) return;
      if (signal.aborted) return reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
    this.#aborted.catch(() => {}); // Each wait races it.
    for (let seq = 1; seq <= options.tasks; seq++) {
      const task = { taskId: crypto.randomUUID(), seq };
      this.#published.push(task);
      this.#expected.add(task.taskId);
    }
  }

  async start(): Promise<VerifyReport> {
    try {
      const { broker, producer, pool, reading } = await this.#open();
      const end = await this.#run(broker, pool, producer, reading);
      return await this.#finish(end, reading);
    } catch (error) {
      if (this.#options.signal?.aborted) {
        throw new VerifyStoppedError(this.#completedCount, this.#options.tasks);
      }
      throw error;
    } finally {
      await this.#cleanUp();
    }
  }

  /** Opens the broker, verify's connections, and starts the workers; each kept for clean-up. */
  async #open() {
    const { queue, heartbeat } = this.#options;
    const own = this.#own;
    const broker = own.broker = await this.#abortable(
      openRunBroker(this.#options.mode, this.#options.url),
    );
    const admin = own.admin = await this.#abortable(Admin.open(broker.url, heartbeat));
    this.#version = admin.version();
    this.#say(`broker: ${this.#version.product} ${this.#version.version}, ${broker.describe}`);
    await admin.checkNew(queue);
    own.queue = true; // From here on, the queue is this run's: deleted at the end.
    // Durable: events published while verify's connection is down wait for it.
    own.watcher = await watchQueue({ url: broker.url, queue, durable: true, heartbeat });
    const reading = this.#read(own.watcher);
    const producer = own.producer = await createProducer({
      url: broker.url,
      queue,
      heartbeat,
      name: "tareas verify",
      awaited: true,
      onResult: (result) => this.#onResult(result),
    });
    own.replyQueue = await admin.replyQueueOf(producer);
    const pool: WorkerPool = own.pool = new WorkerPool({
      command: this.#options.worker,
      url: broker.url,
      queue,
      handler: HANDLER,
      prefetch: this.#options.prefetch,
      concurrency: this.#options.concurrency,
      heartbeat,
      onExit: (worker, status) => this.#onWorkerExit(pool, worker, status),
    });
    await this.#startWorkers(pool, reading);
    return { broker, producer, pool, reading };
  }

  /** Stops the workers, reads back what is left in the queues, and judges the run. */
  async #finish(end: VerifyReport["end"], reading: Promise<void>): Promise<VerifyReport> {
    const { broker, admin, producer, pool, replyQueue } = this.#own;
    this.#say(
      end === "completed"
        ? `all ${this.#confirmed.size} tasks completed; stopping the workers`
        : `${this.#missingCount} tasks missing and nothing more happening; stopping the ` +
          "workers to look for them in the queues",
    );
    const stopping = pool!.alive.map((worker) => worker.name);
    await pool!.close(this.#options.durationMs.max + 10_000);
    await this.#until(
      () => stopping.every((name) => this.#views.get(name)?.offline !== false),
      3_000,
      reading,
    ).catch(() => {}); // Their last events, for the duplicates: best effort.
    await producer!.close();
    const verdict = check({
      published: this.#published,
      confirmed: this.#confirmed,
      refused: this.#refused,
      results: [...this.#results.values()],
      events: this.#events,
      faults: this.#faults,
      census: await admin!.census(this.#options.queue, replyQueue),
    });
    const { queue, tasks, workers, kills, durationMs, prefetch, concurrency, heartbeat, mode } =
      this.#options;
    return {
      settings: {
        queue,
        tasks,
        workers,
        kills,
        durationMs,
        prefetch,
        concurrency,
        heartbeat,
        mode,
      },
      broker: { ...this.#version!, describe: broker!.describe },
      tareas: this.#options.tareasVersion,
      verdict,
      kills: this.#kills,
      ...(this.#brokerKill === undefined ? {} : { brokerKill: this.#brokerKill }),
      end,
      elapsedMs: Math.max(0, this.#lastResultAt - this.#startedAt),
      publishMs: this.#publishMs,
      workerExits: this.#workerExits,
      foreignWorkers: [...this.#views.keys()].filter((name) => !pool!.all.has(name)),
    };
  }

  /** Stops and deletes whatever the run created, each step on its own (one failing stops none). */
  async #cleanUp(): Promise<void> {
    const { broker, admin, watcher, producer, pool, replyQueue, queue } = this.#own;
    const quietly = async (step: () => Promise<unknown> | undefined) => {
      try {
        await step();
      } catch {
        // Cleaning up as much as possible; the step's error is not the run's.
      }
    };
    await quietly(() => pool?.close(this.#options.signal?.aborted ? 2_000 : 10_000));
    await quietly(() => producer?.close());
    await quietly(() => watcher?.close());
    // A private broker goes whole, with its data.
    if (queue && broker?.fault === undefined) {
      await quietly(() => admin?.clean(this.#options.queue, replyQueue));
    }
    await quietly(() => admin?.close());
    await quietly(() => broker?.close());
  }

  /** Reads the watcher's updates until it closes; rejects when its connection gives up. */
  async #read(watcher: QueueWatcher): Promise<void> {
    const reading = (async () => {
      for await (const update of watcher) {
        if (update.kind === "event") this.#onEvent(update.event);
        else this.#queueState = { state: update.state, heardAt: Date.now() };
        this.#poke();
      }
    })();
    reading.catch(() => {}); // Whoever waits on it hears.
    return await reading;
  }

  #view(name: string): WorkerView {
    let view = this.#views.get(name);
    if (view === undefined) {
      view = { online: false, offline: false, open: new Map(), inHand: undefined, heardAt: 0 };
      this.#views.set(name, view);
    }
    return view;
  }

  #onEvent(event: TareasEvent): void {
    const view = this.#view(event.worker);
    switch (event.type) {
      case "worker.online":
        view.online = true;
        view.open.clear(); // A reconnect: what it held went back to the queue.
        this.#events.push(event);
        return;
      case "worker.offline":
        view.offline = true;
        return;
      case "worker.status":
        view.inHand = event.inHand;
        view.heardAt = Date.now();
        return;
      case "task.progress":
        return;
      case "task.started":
        view.open.set(event.taskId, Date.parse(event.at));
        break;
      default:
        view.open.delete(event.taskId);
    }
    this.#events.push(event);
    this.#lastActivity = Date.now();
  }

  #onResult(result: TaskResult): void {
    if (this.#results.has(result.taskId)) return;
    this.#results.set(result.taskId, result);
    if (this.#expected.has(result.taskId)) {
      this.#lastResultAt = Date.now();
      this.#completedCount++;
    }
    if (this.#confirmed.has(result.taskId)) this.#missingCount--;
    this.#lastActivity = Date.now();
    this.#poke();
  }

  #onWorkerExit(pool: WorkerPool, worker: WorkerProcess, status: Deno.CommandStatus): void {
    // A Ctrl-C at a terminal reaches the workers too: they stop with verify.
    if (this.#options.signal?.aborted) return;
    const tail = worker.tail().map(printable);
    this.#workerExits.push({ worker: worker.name, code: status.code, tail });
    this.#say(
      `${worker.name} exited on its own (code ${status.code})` +
        (tail.length ? `: ${tail.at(-1)}` : ""),
    );
    if (this.#workerExits.length > 2 * this.#options.workers) {
      this.#failure ??= new TareasError(
        `Workers keep exiting on their own (${this.#workerExits.length} so far); the last ` +
          `said: ${tail.at(-1) ?? "nothing"}`,
      );
    } else if (this.#startedAt > 0) {
      const next = pool.start();
      this.#say(`starting ${next.name} in its place`);
    }
    this.#poke();
  }

  async #startWorkers(pool: WorkerPool, reading: Promise<void>): Promise<void> {
    const { workers, prefetch, concurrency } = this.#options;
    const started = Array.from({ length: workers }, () => pool.start());
    this.#say(
      `starting ${workers} workers (prefetch ${prefetch}, concurrency ${concurrency}) on queue ` +
        printable(this.#options.queue),
    );
    const online = () => started.every((worker) => this.#views.get(worker.name)?.online);
    const exited = () => started.find((worker) => worker.exited);
    try {
      await this.#until(() => online() || exited() !== undefined, ONLINE_TIMEOUT_MS, reading);
    } catch (error) {
      if (error instanceof TareasError && /^Timed out/.test(error.message)) {
        const late = started.find((worker) => !this.#views.get(worker.name)?.online)!;
        throw new TareasError(
          `Worker ${late.name} did not come online within ${ONLINE_TIMEOUT_MS / 1000} s` +
            lastLine(late),
        );
      }
      throw error;
    }
    const gone = exited();
    if (gone !== undefined) {
      await gone.status;
      throw new TareasError(`Worker ${gone.name} exited before it came online${lastLine(gone)}`);
    }
  }

  /** Publishes the tasks, kills, and waits until the run is over; returns how it ended. */
  async #run(
    broker: RunBroker,
    pool: WorkerPool,
    producer: Producer,
    reading: Promise<void>,
  ): Promise<VerifyReport["end"]> {
    const { tasks, kills, durationMs } = this.#options;
    this.#say(
      `publishing ${tasks} tasks of ${durationMs.min}-${durationMs.max} ms; ${kills} SIGKILLs ` +
        "of a busy worker will follow" +
        (broker.fault ? `, and one kill -9 of ${whatOf(broker)}` : ""),
    );
    this.#startedAt = Date.now();
    this.#lastActivity = this.#startedAt;
    this.#publish(producer).catch((error) => {
      this.#failure ??= error;
      this.#poke();
    });
    const stallMs = STALL_MS + 2 * durationMs.max;
    while (true) {
      if (this.#failure !== undefined) throw this.#failure;
      this.#options.signal?.throwIfAborted();
      if (this.#publishingDone && this.#missingCount === 0 && !this.#faultRunning) {
        return "completed";
      }
      if (broker.fault && !this.#faultDone && !this.#faultRunning && this.#publishingDone) {
        if (this.#completedCount >= Math.ceil(tasks / 3)) this.#killBroker(broker, pool);
      }
      if (this.#kills.length < kills) {
        const due = Math.ceil(((this.#kills.length + 1) * tasks) / (kills + 1));
        if (this.#completedCount >= due && this.#killOne(pool)) continue;
      }
      const idle = Date.now() - this.#lastActivity;
      if (this.#publishingDone && !this.#faultRunning) {
        if (idle >= SETTLE_MS && this.#settled(pool)) return "settled";
        if (idle >= stallMs) return "stalled";
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#wake.promise,
        reading.then(() => {
          throw new TareasError("The events watcher closed before the end");
        }),
        new Promise((resolve) => timer = setTimeout(resolve, 500)),
        this.#aborted,
      ]).finally(() => clearTimeout(timer));
    }
  }

  async #publish(producer: Producer): Promise<void> {
    const { min, max } = this.#options.durationMs;
    for (let from = 0; from < this.#published.length; from += PUBLISH_BATCH) {
      const batch = this.#published.slice(from, from + PUBLISH_BATCH);
      await Promise.all(
        batch.map(({ taskId, seq }) => {
          const payload = randomPayload(min, max);
          this.#workMs.set(taskId, payload.ms);
          return producer.enqueue(payload, { id: taskId, seq }).then(
            () => {
              this.#confirmed.add(taskId);
              if (!this.#results.has(taskId)) this.#missingCount++;
            },
            (error) => void this.#refused.set(taskId, errorMessage(error)),
          );
        }),
      );
    }
    this.#publishMs = Date.now() - this.#startedAt;
    this.#publishingDone = true;
    this.#say(
      `${this.#confirmed.size} of ${this.#published.length} tasks confirmed in ` +
        `${(this.#publishMs / 1000).toFixed(1)} s`,
    );
    this.#poke();
  }

  /**
   * SIGKILLs a random worker in the middle of a task and starts another; false when none is. A
   * task is in the middle when its event says it started and its work has at least
   * {@linkcode MIN_LEFT_MS} to go: the events come up to 10 ms late, and a kill that lands after
   * the task's ack kills nothing in hand.
   */
  #killOne(pool: WorkerPool): boolean {
    const now = Date.now();
    const busy = pool.alive.filter((worker) => {
      const view = this.#views.get(worker.name);
      if (!view?.online) return false;
      return [...view.open].some(([id, started]) =>
        started + (this.#workMs.get(id) ?? 0) - now >= MIN_LEFT_MS
      );
    });
    const victim = busy[Math.floor(Math.random() * busy.length)];
    if (victim === undefined) return false;
    const view = this.#views.get(victim.name)!;
    const inHand = [...view.open.keys()];
    const at = pool.kill(victim);
    view.open.clear();
    this.#faults.push({ kind: "worker", worker: victim.name, at });
    this.#kills.push({ worker: victim.name, atMs: at - this.#startedAt, inHand });
    const next = pool.start();
    const seqs = inHand.map((id) => `#${this.#seqOf(id)}`).join(", ");
    this.#say(
      `✗ SIGKILL ${victim.name} with task ${seqs} in hand (kill ${this.#kills.length} of ` +
        `${this.#options.kills}); starting ${next.name}`,
    );
    return true;
  }

  /** Kills the broker (or the leader's node) with kill -9, then restarts it, in the background. */
  #killBroker(broker: RunBroker, pool: WorkerPool): void {
    const fault = broker.fault!;
    this.#faultRunning = true;
    this.#say(`✗ kill -9 of ${whatOf(broker)}, after syncing its quorum queue metadata to disk`);
    (async () => {
      const from = Date.now();
      const node = await fault.kill(this.#options.queue);
      const at = Date.now();
      const record: Fault = { kind: fault.kind, node, from, at };
      this.#faults.push(record);
      // Its workers' tasks went back to the queue: what the events said they held is gone.
      for (const worker of pool.alive) this.#views.get(worker.name)?.open.clear();
      this.#say(`${printable(node)} killed; restarting it`);
      await fault.restart();
      record.until = Date.now();
      const restartMs = record.until - at;
      this.#brokerKill = { kind: fault.kind, node, atMs: at - this.#startedAt, restartMs };
      this.#say(`${printable(node)} back after ${(restartMs / 1000).toFixed(1)} s`);
    })().then(() => {
      this.#faultDone = true;
      this.#faultRunning = false;
      this.#lastActivity = Date.now();
      this.#poke();
    }, (error) => {
      this.#failure ??= new TareasError(`The broker kill failed: ${errorMessage(error)}`, {
        cause: error,
      });
      this.#poke();
    });
  }

  /**
   * Whether the run is idle with tasks missing: nothing ready in the queue and no worker holding
   * anything (its last status report, heard since the last task event, says 0 in hand).
   */
  #settled(pool: WorkerPool): boolean {
    const queue = this.#queueState;
    if (queue === undefined || queue.heardAt <= this.#lastActivity) return false;
    if (queue.state.declared !== true || queue.state.counts?.ready !== 0) return false;
    return pool.alive.every((worker) => {
      const view = this.#views.get(worker.name);
      return view !== undefined && view.online && view.open.size === 0 && view.inHand === 0 &&
        view.heardAt > this.#lastActivity;
    });
  }

  #seqOf(taskId: string): number | string {
    return this.#published.find((task) => task.taskId === taskId)?.seq ?? "?";
  }

  #poke(): void {
    this.#wake.resolve();
    this.#wake = Promise.withResolvers();
  }

  /** `promise`, or the signal's rejection when it aborts first. */
  #abortable<T>(promise: Promise<T>): Promise<T> {
    promise.then((value) => {
      // Made after an abort: closed, since nobody will use it.
      if (this.#options.signal?.aborted) {
        (value as Partial<AsyncDisposable>)[Symbol.asyncDispose]?.call(value);
      }
    }, () => {});
    return Promise.race([promise, this.#aborted]);
  }

  /** Waits until `done()` holds, re-checking on every update; fails after `ms`. */
  async #until(done: () => boolean, ms: number, reading: Promise<void>): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (this.#failure !== undefined) throw this.#failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new TareasError(`Timed out after ${ms} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#wake.promise,
        reading.then(() => {
          throw new TareasError("The events watcher closed before the end");
        }),
        new Promise((resolve) => timer = setTimeout(resolve, Math.min(left, 500))),
        this.#aborted,
      ]).finally(() => clearTimeout(timer));
    }
  }
}

/** "the broker", or "the queue leader's node". */
function whatOf(broker: RunBroker): string {
  return broker.fault?.kind === "node" ? "the queue leader's node" : "the broker";
}

/** ": <its last line of stderr>" for a message, or nothing. */
function lastLine(worker: WorkerProcess): string {
  const last = worker.tail().at(-1);
  return last === undefined ? "" : `: ${printable(last)}`;
}
