/**
 * tareas itself: the real `producer.ts` → `worker.ts` path, each a separate Deno process, observed
 * through the events the workers publish to `<queue>.events` (an exclusive queue bound there
 * before anything is spawned).
 * @module
 */
import type { ChannelModel } from "../lib/deps/amqplib.ts";
import { eventsExchange } from "../lib/core/events.ts";
import { createTask, encodeTask, taskProperties } from "../lib/core/task.ts";
import { deadQueue, declareTopology, DELIVERY_LIMIT } from "../lib/core/topology.ts";
import { connect, deleteAll, EventTap, type TappedEvent } from "./_amqp.ts";
import { type Child, spawnDeno, stopAll } from "./_proc.ts";
import { CpuWindow, readCpuSeconds, readRssKiB, readStatusKiB, serverOf } from "./_procfs.ts";
import {
  type FailoverRun,
  type PublishRun,
  type StartupRun,
  type ThroughputOptions,
  type ThroughputRun,
  throughputRun,
  throughputTimeoutMs,
} from "./_results.ts";
import { type PublisherWatch, publishRun, watchPublisher } from "./floor.ts";
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
  /** The broker, for workers, producers and the benchmark. @default {amqpUrl()} */
  url?: string;
  /** The `AMQP_URL` of the workers and producers, when not `url` (a cluster's list). @default {url} */
  childUrl?: string;
  /** Read events through this durable queue (see `EventTapOptions.queueName`). @default {none} */
  tapQueue?: string;
}

/**
 * A fresh work queue with its topology declared and an event tap bound, torn down on dispose.
 * Exported for the other scenarios built on our worker (recovery, cluster).
 */
export class Fixture {
  readonly queue: string;
  readonly tap: EventTap;
  readonly children: Child[] = [];
  /** The `AMQP_URL` given to the workers and producers. */
  readonly url: string;
  #connection: ChannelModel;
  #options: OursOptions;
  #workers = 0;

  private constructor(queue: string, connection: ChannelModel, tap: EventTap, o: OursOptions) {
    this.queue = queue;
    this.#connection = connection;
    this.tap = tap;
    this.#options = o;
    this.url = o.childUrl ?? o.url ?? amqpUrl();
  }

  static async open(prefix: string, keys: string[], options: OursOptions): Promise<Fixture> {
    const queue = randomQueueName(prefix);
    const connection = await connect(options.url ?? amqpUrl());
    try {
      const channel = await connection.createConfirmChannel();
      await declareTopology(channel, queue);
      await channel.close();
      const tap = await EventTap.open(connection, queue, {
        keys,
        ...(options.tapQueue === undefined ? {} : { queueName: options.tapQueue }),
      });
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

  /**
   * Connects the benchmark's side (publishing, the event tap) to `url` again, after its broker
   * went away; the tap keeps its listeners and waits.
   */
  async reconnect(url: string): Promise<void> {
    const old = this.#connection;
    this.#connection = await connect(url);
    old.close().catch(() => {});
    await this.tap.attach(this.#connection);
  }

  /** Spawns a worker and returns it with its `--name`; does not wait for it. */
  spawnWorker(flags: string[]): { child: Child; name: string } {
    const name = `bench-${++this.#workers}-${crypto.randomUUID().slice(0, 8)}`;
    const env: Record<string, string> = { AMQP_URL: this.url };
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

  /** Spawns the library publisher: `tasks` no-op tasks, then `stops` stop tasks; does not wait. */
  spawnLibraryPublisher(tasks: number, stops: number): Child {
    const child = spawnDeno(benchFile("_library_publisher.ts"), [
      ...["--queue", this.queue, "--count", String(tasks), "--stops", String(stops)],
    ], { name: "library-publisher", env: { AMQP_URL: this.url, LOG_LEVEL: "warning" } });
    this.children.push(child);
    return child;
  }

  /** Spawns our producer, logging JSON lines (see {@linkcode watchProducer}); does not wait. */
  spawnProducer(flags: string[]): Child {
    const child = spawnProducer(this.url, ["--queue", this.queue, ...flags]);
    this.children.push(child);
    return child;
  }

  /** Publishes one task straight to the work queue, encoded as our producer encodes it. */
  async publishTask(complexity: number): Promise<string> {
    const [id] = await this.publishTasks(1, complexity);
    return id!;
  }

  /** Publishes `count` tasks of `complexity` and waits for the broker's confirms; returns their ids. */
  async publishTasks(count: number, complexity: number): Promise<string[]> {
    const channel = await this.#connection.createConfirmChannel();
    try {
      const ids: string[] = [];
      for (let seq = 1; seq <= count; seq++) {
        const task = createTask(null, { seq, complexity });
        ids.push(task.id);
        channel.sendToQueue(this.queue, encodeTask(task), taskProperties(task));
      }
      await channel.waitForConfirms();
      return ids;
    } finally {
      await channel.close();
    }
  }

  /** The number of messages ready in the work queue. */
  async queued(): Promise<number> {
    const channel = await this.#connection.createChannel();
    try {
      return (await channel.checkQueue(this.queue)).messageCount;
    } finally {
      await channel.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await stopAll(this.children);
    await this.tap.close();
    // The broker may be gone (a killed node): clean what can be cleaned.
    await deleteAll(this.#connection, {
      queues: [
        this.queue,
        deadQueue(this.queue),
        ...(this.#options.tapQueue === undefined ? [] : [this.#options.tapQueue]),
      ],
      exchanges: [eventsExchange(this.queue)],
    });
    await this.#connection.close().catch(() => {});
  }
}

/** Options of {@linkcode runOursThroughput}. */
export interface OursThroughputOptions extends ThroughputOptions, OursOptions {}

/**
 * Runs N no-op tasks through the library's publisher and K workers (prefetch P, concurrency C),
 * all separate processes. Timed from the first publish to the last task reported done by the
 * workers' handlers (`_done_handler.ts`). CPU: the workers and the broker over that window, the
 * publisher from its first publish to its exit.
 */
export async function runOursThroughput(options: OursThroughputOptions): Promise<ThroughputRun> {
  const timeoutMs = options.timeoutMs ?? throughputTimeoutMs(options.tasks);
  const loadAverage = Deno.loadavg()[0]!;
  await using fixture = await Fixture.open("ours", ["worker.online"], options);
  const broker = await serverOf(fixture.url);
  const workers = Array.from({ length: options.consumers }, () =>
    fixture.spawnWorker([
      ...["--prefetch", String(options.prefetch), "--concurrency", String(options.concurrency)],
      ...["--time-scale", "0", "--handler", benchFile("_done_handler.ts")],
    ]));
  await Promise.all(workers.map(({ child, name }) => fixture.waitOnline(child, name)));
  const window = await CpuWindow.open({
    consumers: workers.map(({ child }) => child.pid),
    broker: broker ? [broker.pid] : [],
  });
  const publisher = fixture.spawnLibraryPublisher(options.tasks, options.consumers);
  const watch = await watchPublisher(publisher, timeoutMs);
  const dones = await Promise.all(
    workers.map(({ child }) => child.waitForReport("done", timeoutMs)),
  );
  const cpu = await window.close();
  const published = await watch.finish();
  return throughputRun(
    options.tasks,
    { publishedAt: watch.publishedAt, confirmedAt: published.confirmedAt },
    dones.map((d) => {
      const [completed, first, last] = d.fields.map(Number) as [number, number, number];
      return { completed, first, last };
    }),
    {
      loadAverage,
      cpu: { ...cpu, ...(published.cpu === undefined ? {} : { producer: published.cpu }) },
    },
  );
}

/**
 * Measures our producer alone: `producer.ts --count N --min 0 --max 0` to a fresh queue with no
 * worker, timed from its first publish to the last confirm (both told by its own log lines).
 */
export async function runOursPublish(
  count: number,
  options: OursOptions = {},
): Promise<PublishRun> {
  const url = options.url ?? amqpUrl();
  return await publishRun(
    "ours-publish",
    count,
    (queue) =>
      spawnProducer(url, ["--queue", queue, "--count", String(count), "--min", "0", "--max", "0"]),
    { timeoutMs: throughputTimeoutMs(count), watch: watchProducer },
  );
}

/**
 * Measures the library's `enqueueMany` through `bench/_library_publisher.ts`, as
 * {@linkcode runOursPublish} measures the command line.
 */
export async function runLibraryPublish(
  count: number,
  options: OursOptions = {},
): Promise<PublishRun> {
  const url = options.url ?? amqpUrl();
  return await publishRun(
    "library-publish",
    count,
    (queue) =>
      spawnDeno(benchFile("_library_publisher.ts"), ["--queue", queue, "--count", String(count)], {
        name: "library-publisher",
        env: { AMQP_URL: url, LOG_LEVEL: "warning" },
      }),
    { timeoutMs: throughputTimeoutMs(count) },
  );
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
  /**
   * SIGKILL one worker mid-run: once the first task has completed, the worker holding a task that
   * started last. It is not replaced. @default false
   */
  kill?: boolean;
}

/** One run of the original scenario. */
export interface MakespanRun {
  /** Distinct tasks completed. */
  completed: number;
  /** Tasks published and never completed (0 in a good run). */
  lost: number;
  /** `task.completed` events beyond the first of each task. */
  duplicates: number;
  /** Milliseconds from the first publish to the last `task.completed`. */
  makespanMs: number;
  /** `max(sum of handler durations / workers, longest handler duration)`. */
  boundMs: number;
  /** The handler durations reported by the first `task.completed` of each task, in ms. */
  durationsMs: number[];
  /** With `kill`: ms from the first publish to the SIGKILL. */
  killedAtMs?: number;
}

/**
 * The original scenario: tasks of random complexity on W workers (prefetch 1), timed from the
 * producer's first publish to the last completion, against the lower bound
 * `max(Σ durations / W, longest)`; with `kill`, one worker is SIGKILLed mid-run.
 */
export async function runOursMakespan(options: MakespanOptions = {}): Promise<MakespanRun> {
  const tasks = options.tasks ?? 10;
  const workerCount = options.workers ?? 3;
  const timeScale = options.timeScale ?? 1;
  await using fixture = await Fixture.open("ours-makespan", [
    "worker.online",
    "task.started",
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
  let duplicates = 0;
  let last = 0;
  const running = new Map<string, string>(); // worker → task id it started last
  let killedAt: number | undefined;
  const { promise: allDone, resolve: done } = Promise.withResolvers<void>();
  const killOne = () => {
    const holder = [...running.keys()].at(-1);
    const victim = workers.find(({ name }) => name === holder);
    if (!victim) return;
    killedAt = nowMs();
    victim.child.kill("SIGKILL");
  };
  fixture.tap.onEvent(({ event, at }) => {
    if (event.type === "task.started") {
      running.delete(event.worker);
      running.set(event.worker, event.taskId);
      if (options.kill && killedAt === undefined && durations.size > 0) killOne();
      return;
    }
    if (event.type !== "task.completed") return;
    if (running.get(event.worker) === event.taskId) running.delete(event.worker);
    if (durations.has(event.taskId)) {
      duplicates++;
      return;
    }
    durations.set(event.taskId, event.durationMs ?? 0);
    last = at;
    if (options.kill && killedAt === undefined) killOne();
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
  const { publishedAt } = await watchProducer(producer, READY_TIMEOUT_MS);
  const longestPossibleMs = tasks * (options.max ?? 5) * timeScale * 1000;
  await withTimeout(allDone, 60_000 + 2 * longestPossibleMs, `${tasks} task.completed`);
  const durationsMs = [...durations.values()];
  const sum = durationsMs.reduce((a, b) => a + b, 0);
  return {
    completed: durations.size,
    lost: tasks - durations.size,
    duplicates,
    makespanMs: last - publishedAt,
    boundMs: Math.max(sum / workerCount, Math.max(...durationsMs)),
    durationsMs,
    ...(killedAt === undefined ? {} : { killedAtMs: killedAt - publishedAt }),
  };
}

/** Options of {@linkcode runOursScale}. */
export interface ScaleOptions extends OursOptions {
  /** Tasks to publish and wait for. */
  tasks: number;
  /** Workers. @default 3 */
  workers?: number;
  /** Give up after this long. @default {120 s + 2 ms per task} */
  timeoutMs?: number;
}

/** One `produce --count N --wait` run of the scale scenario. */
export interface ScaleRun {
  /** Tasks published. */
  tasks: number;
  /** The producer's exit code (`undefined`: killed after the timeout). */
  exitCode: number | undefined;
  /** Whether it printed its summary line `N/N tasks completed`. */
  summaryPrinted: boolean;
  /** Milliseconds from spawning the producer to its exit. */
  elapsedMs: number;
  /** Peak resident set size (`VmHWM`) of the `--wait` process, KiB. */
  peakRssKiB: number | undefined;
  /** The last line the producer wrote to stderr, when it failed. */
  failure?: string;
}

/**
 * The scale scenario: W workers at `--time-scale 0`, then `producer.ts --count N --min 0 --max 0
 * --wait`; records whether it exits 0 having printed its summary, and the peak memory of the
 * `--wait` process (`VmHWM` at its exit, from the preloaded exit probe; else the largest value
 * polled every 200 ms).
 */
export async function runOursScale(options: ScaleOptions): Promise<ScaleRun> {
  const timeoutMs = options.timeoutMs ?? 120_000 + 2 * options.tasks;
  await using fixture = await Fixture.open("ours-scale", ["worker.online"], options);
  const workers = Array.from(
    { length: options.workers ?? 3 },
    () => fixture.spawnWorker(["--time-scale", "0"]),
  );
  await Promise.all(workers.map(({ child, name }) => fixture.waitOnline(child, name)));
  const started = nowMs();
  const producer = spawnDeno(`${REPO_ROOT}producer.ts`, [
    "--queue",
    fixture.queue,
    "--count",
    String(options.tasks),
    "--min",
    "0",
    "--max",
    "0",
    "--wait",
  ], {
    name: "producer --wait",
    env: { AMQP_URL: fixture.url, LOG_LEVEL: "warning" },
    denoFlags: PRODUCE_V8_FLAGS,
  });
  fixture.children.push(producer);
  const summary = `${options.tasks}/${options.tasks} tasks completed`;
  let summaryPrinted = false;
  let failure: string | undefined;
  producer.onLine((line) => {
    if (line.stream === "stdout" && line.text.trim() === summary) summaryPrinted = true;
    if (line.stream === "stderr" && line.text.trim()) failure = line.text.trim();
  });
  let polled = 0;
  const poller = setInterval(() => {
    readStatusKiB(producer.pid, "VmHWM").then((kib) => polled = Math.max(polled, kib), () => {});
  }, 200);
  let exitCode: number | undefined;
  try {
    const status = await withTimeout(producer.status, timeoutMs, "produce --wait to exit");
    exitCode = status.code;
  } catch (error) {
    producer.kill("SIGKILL");
    failure = error instanceof Error ? error.message.split("\n")[0] : String(error);
  } finally {
    clearInterval(poller);
  }
  const elapsedMs = nowMs() - started;
  const exit = await producer.exitReport(1_000).catch(() => undefined);
  const peak = Math.max(exit?.peakRssKiB ?? 0, polled);
  return {
    tasks: options.tasks,
    exitCode,
    summaryPrinted,
    elapsedMs,
    peakRssKiB: peak > 0 ? peak : undefined,
    ...(exitCode === 0 || failure === undefined ? {} : { failure }),
  };
}

/**
 * Spawns `producer.ts` with `args`, logging JSON lines at info level, with the V8 flags of
 * `deno task produce` (what a user runs).
 */
function spawnProducer(url: string, args: string[]): Child {
  return spawnDeno(`${REPO_ROOT}producer.ts`, args, {
    name: "producer",
    env: { AMQP_URL: url, LOG_LEVEL: "info", LOG_FORMAT: "json" },
    denoFlags: PRODUCE_V8_FLAGS,
  });
}

const PRODUCE_V8_FLAGS: string[] = (JSON.parse(
  await Deno.readTextFile(`${REPO_ROOT}deno.json`),
).tasks.produce as string).split(/\s+/).filter((flag) => flag.startsWith("--v8-flags="));

/**
 * Watches our producer as {@linkcode watchPublisher} watches the floor's, from its own log lines:
 * "Publishing …" just before its first publish, "Published … all confirmed" after the last
 * confirm. Its CPU time is read from `/proc` when the first is seen.
 */
async function watchProducer(producer: Child, timeoutMs: number): Promise<PublisherWatch> {
  const message = (text: string) => {
    try {
      return String(JSON.parse(text).message ?? "");
    } catch {
      return "";
    }
  };
  const publishing = await producer.waitForLine((l) => message(l.text).startsWith("Publishing "), {
    timeoutMs: READY_TIMEOUT_MS,
    what: "the producer's Publishing line",
  });
  const cpuAtFirst = await readCpuSeconds(producer.pid).catch(() => undefined);
  return {
    publishedAt: publishing.at,
    finish: async () => {
      const confirmed = await producer.waitForLine(
        (l) => /^Published .* all confirmed/.test(message(l.text)),
        { timeoutMs, what: "the producer's Published line" },
      );
      const exit = await producer.exitReport(timeoutMs).catch(() => undefined);
      const status = await producer.status;
      if (!status.success) {
        throw new Error(`${producer.name} exited with code ${status.code}\n${producer.output()}`);
      }
      return {
        confirmedAt: confirmed.at,
        cpu: exit && cpuAtFirst !== undefined ? exit.cpuSeconds - cpuAtFirst : undefined,
      };
    },
  };
}
