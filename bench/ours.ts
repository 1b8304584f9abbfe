/**
 * tareas itself: the real `producer.ts` → `worker.ts` path, each a separate Deno process, observed
 * through the events the workers publish to `<queue>.events` (an exclusive queue bound there
 * before anything is spawned).
 * @module
 */
import type { ChannelModel } from "amqplib";
import { eventsExchange } from "../lib/events.ts";
import { createTask, encodeTask, taskProperties } from "../lib/task.ts";
import { deadQueue, declareTopology, DELIVERY_LIMIT } from "../lib/topology.ts";
import { connect, deleteAll, EventTap, type TappedEvent } from "./_amqp.ts";
import { type Child, readRssKiB, spawnDeno, stopAll } from "./_proc.ts";
import {
  type FailoverRun,
  type StartupRun,
  type ThroughputOptions,
  type ThroughputRun,
  throughputTimeoutMs,
} from "./_results.ts";
import { amqpUrl, benchFile, nowMs, randomQueueName, REPO_ROOT, withTimeout } from "./_util.ts";

const READY_TIMEOUT_MS = 30_000;

/** Whether `worker.ts` and `producer.ts` exist at the repository root. */
export async function oursAvailable(): Promise<boolean> {
  for (const file of ["worker.ts", "producer.ts"]) {
    try {
      await Deno.stat(`${REPO_ROOT}${file}`);
    } catch {
      return false;
    }
  }
  return true;
}

/** Options shared by the runners that start our workers. */
export interface OursOptions {
  /** `LOG_LEVEL` of the worker processes. @default {unset: the worker's default} */
  workerLogLevel?: string;
}

/** A fresh work queue with its topology declared and an event tap bound, torn down on dispose. */
class Fixture {
  readonly queue: string;
  readonly tap: EventTap;
  readonly children: Child[] = [];
  #connection: ChannelModel;
  #options: OursOptions;
  #workers = 0;

  private constructor(queue: string, connection: ChannelModel, tap: EventTap, o: OursOptions) {
    this.queue = queue;
    this.#connection = connection;
    this.tap = tap;
    this.#options = o;
  }

  static async open(prefix: string, keys: string[], options: OursOptions): Promise<Fixture> {
    const queue = randomQueueName(prefix);
    const connection = await connect(amqpUrl());
    try {
      const channel = await connection.createConfirmChannel();
      await declareTopology(channel, queue);
      await channel.close();
      const tap = await EventTap.open(connection, eventsExchange(queue), { keys });
      return new Fixture(queue, connection, tap, options);
    } catch (error) {
      await deleteAll(connection, {
        queues: [queue, deadQueue(queue)],
        exchanges: [eventsExchange(queue)],
      });
      await connection.close();
      throw error;
    }
  }

  /** Spawns a worker and returns it with its `--name`; does not wait for it. */
  spawnWorker(flags: string[]): { child: Child; name: string } {
    const name = `bench-${++this.#workers}-${crypto.randomUUID().slice(0, 8)}`;
    const env: Record<string, string> = { AMQP_URL: amqpUrl() };
    if (this.#options.workerLogLevel) env.LOG_LEVEL = this.#options.workerLogLevel;
    const child = spawnDeno(`${REPO_ROOT}worker.ts`, [
      "--queue",
      this.queue,
      "--name",
      name,
      ...flags,
    ], { name: `worker ${name}`, env });
    this.children.push(child);
    return { child, name };
  }

  /** Waits for the `worker.online` event of `name`, failing early if the process exits. */
  async waitOnline(child: Child, name: string): Promise<TappedEvent> {
    const online = this.tap.waitFor(
      (e) => e.event.type === "worker.online" && e.event.worker === name,
      { timeoutMs: READY_TIMEOUT_MS, what: `worker.online from ${name}` },
    );
    const exited = child.status.then((status) => {
      throw new Error(
        `Worker ${name} exited with code ${status.code} before worker.online\n` +
          child.output(),
      );
    });
    return await Promise.race([online, exited]);
  }

  /** Spawns our producer with the publish hook preloaded; does not wait for it. */
  spawnProducer(flags: string[]): Child {
    const child = spawnDeno(`${REPO_ROOT}producer.ts`, ["--queue", this.queue, ...flags], {
      name: "producer",
      env: { AMQP_URL: amqpUrl() },
      denoFlags: ["--preload", benchFile("_publish_hook.ts")],
    });
    this.children.push(child);
    return child;
  }

  /** Publishes one task straight to the work queue, encoded as our producer encodes it. */
  async publishTask(complexity: number): Promise<string> {
    const channel = await this.#connection.createConfirmChannel();
    try {
      const task = createTask(null, { seq: 1, complexity });
      channel.sendToQueue(this.queue, encodeTask(task), taskProperties(task));
      await channel.waitForConfirms();
      return task.id;
    } finally {
      await channel.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await stopAll(this.children);
    await this.tap.close();
    await deleteAll(this.#connection, {
      queues: [this.queue, deadQueue(this.queue)],
      exchanges: [eventsExchange(this.queue)],
    });
    await this.#connection.close();
  }
}

/** Options of {@linkcode runOursThroughput}. */
export interface OursThroughputOptions extends ThroughputOptions, OursOptions {}

/**
 * Runs N no-op tasks through our producer and K workers (prefetch P, concurrency C), all separate
 * processes. Timed from the producer's first publish (reported by a preloaded hook) to the last
 * `task.completed` event received.
 */
export async function runOursThroughput(options: OursThroughputOptions): Promise<ThroughputRun> {
  const timeoutMs = options.timeoutMs ?? throughputTimeoutMs(options.tasks);
  await using fixture = await Fixture.open("ours", [
    "worker.online",
    "task.completed",
    "task.failed",
    "task.dead",
  ], options);
  const workers = Array.from({ length: options.consumers }, () =>
    fixture.spawnWorker([
      "--prefetch",
      String(options.prefetch),
      "--concurrency",
      String(options.concurrency),
      "--time-scale",
      "0",
    ]));
  await Promise.all(workers.map(({ child, name }) => fixture.waitOnline(child, name)));

  const completed = new Set<string>();
  let first = Infinity;
  let last = 0;
  const { promise: allDone, resolve: done, reject: fail } = Promise.withResolvers<void>();
  fixture.tap.onEvent(({ event, at }) => {
    if (event.type === "task.failed" || event.type === "task.dead") {
      fail(new Error(`A no-op task failed: ${JSON.stringify(event)}`));
    } else if (event.type === "task.completed" && !completed.has(event.taskId)) {
      completed.add(event.taskId);
      first = Math.min(first, at);
      last = at;
      if (completed.size >= options.tasks) done();
    }
  });
  const producer = fixture.spawnProducer([
    "--count",
    String(options.tasks),
    "--min",
    "0",
    "--max",
    "0",
  ]);
  const publishing = await producer.waitForReport("publishing", READY_TIMEOUT_MS);
  const publishedAt = Number(publishing.fields[0]);
  const exit = producer.status.then((status) => {
    if (!status.success) {
      throw new Error(`The producer exited with code ${status.code}\n${producer.output()}`);
    }
    return nowMs();
  });
  await withTimeout(Promise.all([allDone, exit]), timeoutMs, `${options.tasks} task.completed`);
  const confirmed = publishedConfirmMs(producer.output());
  const elapsedMs = last - publishedAt;
  return {
    tasks: options.tasks,
    completed: completed.size,
    elapsedMs,
    tasksPerSecond: completed.size / elapsedMs * 1000,
    ...(confirmed === undefined ? {} : { publishMs: confirmed }),
  };
}

/** The producer's own "all confirmed ... in N ms" figure from its log, if present. */
function publishedConfirmMs(output: string): number | undefined {
  const match = /all confirmed by the broker in (\d+) ms/.exec(output);
  return match ? Number(match[1]) : undefined;
}

/** Options of {@linkcode runOursFailover}. */
export interface OursFailoverOptions extends OursOptions {
  /** How many kills. @default 20 */
  kills?: number;
  /** Give up on one redelivery after this long. @default 30_000 */
  timeoutMs?: number;
}

/**
 * Measures the time from SIGKILL of a worker holding a task to that task's `task.started` on
 * another, idle worker. Workers run prefetch 1, concurrency 1, and tasks that last an hour. Each
 * chain on a fresh queue: two workers, one task; kill its holder, time the restart on the other,
 * spawn a replacement (the next idle worker), repeat while the task's delivery count stays below
 * the queue's delivery limit.
 */
export async function runOursFailover(options: OursFailoverOptions = {}): Promise<FailoverRun[]> {
  const kills = options.kills ?? 20;
  const perChain = Math.max(1, DELIVERY_LIMIT - 1);
  const runs: FailoverRun[] = [];
  while (runs.length < kills) {
    runs.push(...await failoverChain(Math.min(perChain, kills - runs.length), options));
  }
  return runs;
}

async function failoverChain(kills: number, options: OursFailoverOptions): Promise<FailoverRun[]> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  await using fixture = await Fixture.open("ours-failover", [
    "worker.online",
    "task.started",
  ], options);
  const flags = ["--prefetch", "1", "--concurrency", "1", "--time-scale", "3600"];
  const workers = new Map<string, Child>();
  const spawn = async () => {
    const { child, name } = fixture.spawnWorker(flags);
    workers.set(name, child);
    await fixture.waitOnline(child, name);
  };
  await Promise.all([spawn(), spawn()]);
  const taskId = await fixture.publishTask(1);
  let started = await fixture.tap.waitFor(
    (e) => e.event.type === "task.started" && e.event.taskId === taskId,
    { timeoutMs: READY_TIMEOUT_MS, what: `task.started of ${taskId}` },
  );
  const runs: FailoverRun[] = [];
  for (let i = 0; i < kills; i++) {
    const holder = started.event.worker;
    const child = workers.get(holder);
    if (!child) throw new Error(`Task ${taskId} started on unknown worker ${holder}`);
    const restarted = fixture.tap.waitFor(
      (e) =>
        e.event.type === "task.started" && e.event.taskId === taskId && e.event.worker !== holder,
      {
        timeoutMs,
        what: `task ${taskId} to start again after SIGKILL of ${holder}`,
        since: nowMs(),
      },
    );
    const killedAt = nowMs();
    child.kill("SIGKILL");
    started = await restarted;
    runs.push({ latencyMs: started.at - killedAt });
    workers.delete(holder);
    await child.status;
    if (i < kills - 1) await spawn();
  }
  return runs;
}

/**
 * Spawns one worker on a queue whose topology already exists and measures spawn →
 * `worker.online` (as received by the tap) and VmRSS right after.
 */
export async function runOursStartup(options: OursOptions = {}): Promise<StartupRun> {
  await using fixture = await Fixture.open("ours-startup", ["worker.online"], options);
  const { child, name } = fixture.spawnWorker(["--prefetch", "1", "--concurrency", "1"]);
  const online = await fixture.waitOnline(child, name);
  const rssKiB = await readRssKiB(child.pid);
  return { startupMs: online.at - child.spawnedAt, rssKiB };
}

/** Options of {@linkcode runOursMakespan}. */
export interface MakespanOptions extends OursOptions {
  /** Tasks. @default 10 */
  tasks?: number;
  /** Workers. @default 3 */
  workers?: number;
  /** Smallest complexity. @default 1 */
  min?: number;
  /** Largest complexity. @default 5 */
  max?: number;
  /** Seconds per unit of complexity. @default 1 */
  timeScale?: number;
}

/** One run of the original scenario. */
export interface MakespanRun {
  /** Tasks completed. */
  completed: number;
  /** Milliseconds from the first publish to the last `task.completed`. */
  makespanMs: number;
  /** `max(sum of handler durations / workers, longest handler duration)`. */
  boundMs: number;
  /** The handler durations reported by `task.completed`, in ms. */
  durationsMs: number[];
}

/**
 * The original scenario: tasks of random complexity on W workers (prefetch 1), timed from the
 * producer's first publish to the last completion, against the lower bound
 * `max(Σ durations / W, longest)`.
 */
export async function runOursMakespan(options: MakespanOptions = {}): Promise<MakespanRun> {
  const tasks = options.tasks ?? 10;
  const workerCount = options.workers ?? 3;
  const timeScale = options.timeScale ?? 1;
  await using fixture = await Fixture.open("ours-makespan", [
    "worker.online",
    "task.completed",
  ], options);
  const workers = Array.from(
    { length: workerCount },
    () =>
      fixture.spawnWorker([
        "--prefetch",
        "1",
        "--concurrency",
        "1",
        "--time-scale",
        String(timeScale),
      ]),
  );
  await Promise.all(workers.map(({ child, name }) => fixture.waitOnline(child, name)));
  const durations = new Map<string, number>();
  let last = 0;
  const { promise: allDone, resolve: done } = Promise.withResolvers<void>();
  fixture.tap.onEvent(({ event, at }) => {
    if (event.type !== "task.completed" || durations.has(event.taskId)) return;
    durations.set(event.taskId, event.durationMs ?? 0);
    last = at;
    if (durations.size >= tasks) done();
  });
  const producer = fixture.spawnProducer([
    "--count",
    String(tasks),
    "--min",
    String(options.min ?? 1),
    "--max",
    String(options.max ?? 5),
  ]);
  const publishing = await producer.waitForReport("publishing", READY_TIMEOUT_MS);
  const publishedAt = Number(publishing.fields[0]);
  const longestPossibleMs = tasks * (options.max ?? 5) * timeScale * 1000;
  await withTimeout(allDone, 60_000 + longestPossibleMs, `${tasks} task.completed`);
  const durationsMs = [...durations.values()];
  const sum = durationsMs.reduce((a, b) => a + b, 0);
  return {
    completed: durations.size,
    makespanMs: last - publishedAt,
    boundMs: Math.max(sum / workerCount, Math.max(...durationsMs)),
    durationsMs,
  };
}
