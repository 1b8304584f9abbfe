/**
 * The phases of a verify run (see `mod.ts`): open the broker and start the workers, publish and
 * kill until the run is over, then stop the workers, read back the queues and judge; and the
 * clean-up of whatever it created.
 * @module
 */
import { errorMessage, TareasError } from "../../core/errors.ts";
import { createProducer, type Producer } from "../../core/producer/mod.ts";
import { printable } from "../../core/text.ts";
import { type QueueWatcher, watchQueue } from "../../observe/watch.ts";
import { Admin, type BrokerVersion, openRunBroker, type RunBroker } from "./broker.ts";
import { check } from "./checker.ts";
import { killBroker, killOne, whatOf } from "./_faults.ts";
import type { VerifyOptions, VerifyReport } from "./types.ts";
import { RunState } from "./_state.ts";
import { randomPayload } from "./work.ts";
import { WorkerPool, type WorkerProcess } from "./workers.ts";

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

/** Tasks published at once, each batch confirmed before the next. */
const PUBLISH_BATCH = 1_000;

/** One run of `runVerify`: `start()`, then always `cleanUp()`. */
export class VerifyRun {
  #options: VerifyOptions;
  #say: (line: string) => void;
  #state: RunState;
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
    this.#state = new RunState(options.tasks);
  }

  /** Results of the run's tasks heard so far. */
  get completed(): number {
    return this.#state.completedCount;
  }

  /** Runs it from start to judgement; see the module documentation. */
  async start(): Promise<VerifyReport> {
    const { broker, producer, pool, reading } = await this.#open();
    const end = await this.#run(broker, pool, producer, reading);
    return await this.#finish(end, reading);
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
      onResult: (result) => this.#state.onResult(result),
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
    const state = this.#state;
    this.#say(
      end === "completed"
        ? `all ${state.confirmed.size} tasks completed; stopping the workers`
        : `${state.missingCount} tasks missing and nothing more happening; stopping the ` +
          "workers to look for them in the queues",
    );
    const stopping = pool!.alive.map((worker) => worker.name);
    await pool!.close(this.#options.durationMs.max + 10_000);
    await this.#until(
      () => stopping.every((name) => state.views.get(name)?.offline !== false),
      3_000,
      reading,
    ).catch(() => {}); // Their last events, for the duplicates: best effort.
    await producer!.close();
    const verdict = check({
      published: state.published,
      confirmed: state.confirmed,
      refused: state.refused,
      results: [...state.results.values()],
      events: state.events,
      faults: state.faults,
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
      kills: state.kills,
      ...(state.brokerKill === undefined ? {} : { brokerKill: state.brokerKill }),
      end,
      elapsedMs: Math.max(0, state.lastResultAt - state.startedAt),
      publishMs: state.publishMs,
      workerExits: state.workerExits,
      foreignWorkers: [...state.views.keys()].filter((name) => !pool!.all.has(name)),
    };
  }

  /** Stops and deletes whatever the run created, each step on its own (one failing stops none). */
  async cleanUp(): Promise<void> {
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
        if (update.kind === "event") this.#state.onEvent(update.event);
        else this.#state.queueState = { state: update.state, heardAt: Date.now() };
        this.#state.poke();
      }
    })();
    reading.catch(() => {}); // Whoever waits on it hears.
    return await reading;
  }

  #onWorkerExit(pool: WorkerPool, worker: WorkerProcess, status: Deno.CommandStatus): void {
    // A Ctrl-C at a terminal reaches the workers too: they stop with verify.
    if (this.#options.signal?.aborted) return;
    const state = this.#state;
    const tail = worker.tail().map(printable);
    state.workerExits.push({ worker: worker.name, code: status.code, tail });
    this.#say(
      `${worker.name} exited on its own (code ${status.code})` +
        (tail.length ? `: ${tail.at(-1)}` : ""),
    );
    if (state.workerExits.length > 2 * this.#options.workers) {
      state.failure ??= new TareasError(
        `Workers keep exiting on their own (${state.workerExits.length} so far); the last ` +
          `said: ${tail.at(-1) ?? "nothing"}`,
      );
    } else if (state.startedAt > 0) {
      const next = pool.start();
      this.#say(`starting ${next.name} in its place`);
    }
    state.poke();
  }

  async #startWorkers(pool: WorkerPool, reading: Promise<void>): Promise<void> {
    const { workers, prefetch, concurrency } = this.#options;
    const views = this.#state.views;
    const started = Array.from({ length: workers }, () => pool.start());
    this.#say(
      `starting ${workers} workers (prefetch ${prefetch}, concurrency ${concurrency}) on queue ` +
        printable(this.#options.queue),
    );
    const online = () => started.every((worker) => views.get(worker.name)?.online);
    const exited = () => started.find((worker) => worker.exited);
    try {
      await this.#until(() => online() || exited() !== undefined, ONLINE_TIMEOUT_MS, reading);
    } catch (error) {
      if (error instanceof TareasError && /^Timed out/.test(error.message)) {
        const late = started.find((worker) => !views.get(worker.name)?.online)!;
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
    const state = this.#state;
    this.#say(
      `publishing ${tasks} tasks of ${durationMs.min}-${durationMs.max} ms; ${kills} SIGKILLs ` +
        "of a busy worker will follow" +
        (broker.fault ? `, and one kill -9 of ${whatOf(broker)}` : ""),
    );
    state.startedAt = Date.now();
    state.lastActivity = state.startedAt;
    this.#publish(producer).catch((error) => {
      state.failure ??= error;
      state.poke();
    });
    const stallMs = STALL_MS + 2 * durationMs.max;
    const faults = { pool, say: this.#say };
    while (true) {
      if (state.failure !== undefined) throw state.failure;
      this.#options.signal?.throwIfAborted();
      if (state.publishingDone && state.missingCount === 0 && !state.faultRunning) {
        return "completed";
      }
      if (broker.fault && !state.faultDone && !state.faultRunning && state.publishingDone) {
        if (state.completedCount >= Math.ceil(tasks / 3)) {
          killBroker(state, { ...faults, broker, queue: this.#options.queue });
        }
      }
      if (state.kills.length < kills) {
        const due = Math.ceil(((state.kills.length + 1) * tasks) / (kills + 1));
        if (state.completedCount >= due && killOne(state, { ...faults, kills })) continue;
      }
      const idle = Date.now() - state.lastActivity;
      if (state.publishingDone && !state.faultRunning) {
        if (idle >= SETTLE_MS && state.settled(pool)) return "settled";
        if (idle >= stallMs) return "stalled";
      }
      await this.#nextUpdate(500, reading);
    }
  }

  async #publish(producer: Producer): Promise<void> {
    const { min, max } = this.#options.durationMs;
    const state = this.#state;
    for (let from = 0; from < state.published.length; from += PUBLISH_BATCH) {
      const batch = state.published.slice(from, from + PUBLISH_BATCH);
      await Promise.all(
        batch.map(({ taskId, seq }) => {
          const payload = randomPayload(min, max);
          state.workMs.set(taskId, payload.ms);
          return producer.enqueue(payload, { id: taskId, seq }).then(
            () => {
              state.confirmed.add(taskId);
              if (!state.results.has(taskId)) state.missingCount++;
            },
            (error) => void state.refused.set(taskId, errorMessage(error)),
          );
        }),
      );
    }
    state.publishMs = Date.now() - state.startedAt;
    state.publishingDone = true;
    this.#say(
      `${state.confirmed.size} of ${state.published.length} tasks confirmed in ` +
        `${(state.publishMs / 1000).toFixed(1)} s`,
    );
    state.poke();
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
      if (this.#state.failure !== undefined) throw this.#state.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new TareasError(`Timed out after ${ms} ms`);
      await this.#nextUpdate(Math.min(left, 500), reading);
    }
  }

  /**
   * Waits for the next update or `ms`, whichever comes first; rejects when the watcher closes or
   * the signal aborts.
   */
  async #nextUpdate(ms: number, reading: Promise<void>): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#state.wake.promise,
      reading.then(() => {
        throw new TareasError("The events watcher closed before the end");
      }),
      new Promise((resolve) => timer = setTimeout(resolve, ms)),
      this.#aborted,
    ]).finally(() => clearTimeout(timer));
  }
}

/** ": <its last line of stderr>" for a message, or nothing. */
function lastLine(worker: WorkerProcess): string {
  const last = worker.tail().at(-1);
  return last === undefined ? "" : `: ${printable(last)}`;
}
