/**
 * The floor: bare amqplib on the same broker and the same queue as tareas (a durable quorum queue
 * declared with tareas' arguments). A confirm-channel publisher and K consumer processes with
 * prefetch P that ack each message (or, `ack: "batched"`, ack contiguous deliveries together); no
 * events, no task decoding. Whatever tareas adds on top of this loop is its overhead.
 * @module
 */
import { eventsExchange } from "../lib/core/events.ts";
import { deadQueue } from "../lib/core/topology.ts";
import { connect, declareFloorQueue, deleteAll } from "./_amqp.ts";
import { type Child, spawnDeno, stopAll } from "./_proc.ts";
import { clockTicksPerSecond, CpuWindow, readCpuSeconds, readRssKiB, serverOf } from "./_procfs.ts";
import {
  type PublishRun,
  type StartupRun,
  type ThroughputOptions,
  type ThroughputRun,
  throughputRun,
  throughputTimeoutMs,
} from "./_results.ts";
import { amqpUrl, benchFile, nowMs, randomQueueName } from "./_util.ts";

const READY_TIMEOUT_MS = 30_000;

/** Options of {@linkcode runFloorThroughput}. */
export interface FloorThroughputOptions extends ThroughputOptions {
  /**
   * `"publishing"`: the consumers wait on an empty queue and the publisher runs at the same time
   * (as ours and BullMQ run). `"filled"`: the publisher fills the queue and exits first, then the
   * consumers drain it. @default {"publishing"}
   */
  fill?: "publishing" | "filled";
  /** One ack per message, or one ack covering every delivery received so far. @default {"each"} */
  ack?: "each" | "batched";
}

/** Spawns the floor's publisher for `count` messages plus `stops` end-of-run messages. */
function spawnPublisher(queue: string, count: number, stops: number): Child {
  return spawnDeno(benchFile("_floor_publisher.ts"), [
    "--queue",
    queue,
    "--count",
    String(count),
    "--stops",
    String(stops),
  ], { name: "floor-publisher", env: { AMQP_URL: amqpUrl() } });
}

/**
 * Waits for a publisher's `bench publishing` line and takes its CPU time there; returns when it
 * published first and a function that waits for `bench confirmed` and the exit, giving the
 * confirm time and the CPU seconds spent from the first publish to the exit.
 */
/** When a publisher began, and a way to wait for its last confirm. */
export interface PublisherWatch {
  /** When it published first ({@linkcode nowMs}). */
  publishedAt: number;
  /** Resolves once every publish is confirmed, with when, and its CPU seconds in between. */
  finish: () => Promise<{ confirmedAt: number; cpu: number | undefined }>;
}

export async function watchPublisher(
  publisher: Child,
  timeoutMs: number,
): Promise<PublisherWatch> {
  const publishing = await publisher.waitForReport("publishing", READY_TIMEOUT_MS);
  // The publisher's own CPU time at its first publish, else read now (a little later).
  const ticks = Number(publishing.fields[1]);
  const cpuAtFirst = Number.isFinite(ticks)
    ? ticks / await clockTicksPerSecond()
    : await readCpuSeconds(publisher.pid).catch(() => undefined);
  return {
    publishedAt: Number(publishing.fields[0]),
    finish: async () => {
      const confirmed = await publisher.waitForReport("confirmed", timeoutMs);
      const exit = await publisher.exitReport(timeoutMs).catch(() => undefined);
      const status = await publisher.status;
      if (!status.success) {
        throw new Error(`${publisher.name} exited with code ${status.code}\n${publisher.output()}`);
      }
      return {
        confirmedAt: Number(confirmed.fields[0]),
        cpu: exit && cpuAtFirst !== undefined ? exit.cpuSeconds - cpuAtFirst : undefined,
      };
    },
  };
}

/**
 * Runs N no-op messages through a fresh queue with K bare consumers (prefetch P, each a separate
 * Deno process), started first and ready before the publisher is spawned.
 *
 * - `fill: "publishing"`: timed from the publisher's first publish to the last consumer's last
 *   ack; the consumers consume while the publisher publishes.
 * - `fill: "filled"`: the consumers connect but wait; the publisher fills the queue and exits;
 *   then the consumers are told to start (`SIGUSR1`). Timed from that signal to the last ack.
 *
 * @example
 * ```ts
 * const run = await runFloorThroughput({ tasks: 10_000, consumers: 1, prefetch: 1, concurrency: 1 });
 * ```
 */
export async function runFloorThroughput(options: FloorThroughputOptions): Promise<ThroughputRun> {
  const url = amqpUrl();
  const queue = randomQueueName("floor");
  const timeoutMs = options.timeoutMs ?? throughputTimeoutMs(options.tasks);
  const filled = options.fill === "filled";
  const loadAverage = Deno.loadavg()[0]!;
  const broker = await serverOf(url);
  const connection = await connect(url);
  const children: Child[] = [];
  try {
    const channel = await connection.createChannel();
    await declareFloorQueue(channel, queue);
    await channel.close();
    const env = { AMQP_URL: url };
    const consumers: Child[] = [];
    for (let i = 0; i < options.consumers; i++) {
      consumers.push(
        spawnDeno(benchFile("_bare_consumer.ts"), [
          "--queue",
          queue,
          "--prefetch",
          String(options.prefetch),
          "--ack",
          options.ack ?? "each",
          ...(filled ? ["--paused"] : []),
        ], { name: `floor-consumer-${i + 1}`, env }),
      );
    }
    children.push(...consumers);
    await Promise.all(consumers.map((c) => c.waitForReport("ready", READY_TIMEOUT_MS)));
    const groups = {
      consumers: consumers.map((c) => c.pid),
      broker: broker ? [broker.pid] : [],
    };
    let window = filled ? undefined : await CpuWindow.open(groups);
    const publisher = spawnPublisher(queue, options.tasks, options.consumers);
    children.push(publisher);
    const watch = await watchPublisher(publisher, timeoutMs);
    let startedAt: number | undefined;
    let published: { confirmedAt: number; cpu: number | undefined } | undefined;
    if (filled) {
      published = await watch.finish();
      window = await CpuWindow.open(groups);
      startedAt = nowMs();
      for (const consumer of consumers) consumer.kill("SIGUSR1");
    }
    const dones = await Promise.all(consumers.map((c) => c.waitForReport("done", timeoutMs)));
    const cpu = await window!.close();
    published ??= await watch.finish();
    return throughputRun(
      options.tasks,
      {
        publishedAt: watch.publishedAt,
        confirmedAt: published.confirmedAt,
        ...(startedAt === undefined ? {} : { startedAt }),
      },
      dones.map((d) => {
        const [completed, first, last] = d.fields.map(Number) as [number, number, number];
        return { completed, first, last };
      }),
      {
        loadAverage,
        cpu: { ...cpu, ...(published.cpu === undefined ? {} : { producer: published.cpu }) },
      },
    );
  } finally {
    await stopAll(children);
    await deleteAll(connection, { queues: [queue] });
    await connection.close();
  }
}

/**
 * Measures the raw confirm-channel publish rate: `bench/_floor_publisher.ts` publishes `count`
 * persistent messages to a fresh, unconsumed queue (tareas' arguments), waiting on `drain` and
 * then on every confirm. Timed from its first publish to all confirmed; then checks the queue
 * holds them all.
 */
export async function runFloorPublish(count: number, timeoutMs?: number): Promise<PublishRun> {
  return await publishRun("floor-publish", count, (queue) => spawnPublisher(queue, count, 0), {
    timeoutMs: timeoutMs ?? throughputTimeoutMs(count),
  });
}

/**
 * Runs a publisher child spawned by `spawn(queue)` against a fresh queue with tareas' arguments
 * and no consumer, timing it from its `bench publishing` line to its `bench confirmed` line, and
 * deletes the queue (with the dead-letter queue and events exchange tareas declares) afterwards.
 */
export async function publishRun(
  prefix: string,
  count: number,
  spawn: (queue: string) => Child,
  options: {
    timeoutMs: number;
    watch?: (child: Child, timeoutMs: number) => Promise<PublisherWatch>;
  },
): Promise<PublishRun> {
  const url = amqpUrl();
  const queue = randomQueueName(prefix);
  const loadAverage = Deno.loadavg()[0]!;
  const broker = await serverOf(url);
  const connection = await connect(url);
  let child: Child | undefined;
  try {
    const channel = await connection.createChannel();
    await declareFloorQueue(channel, queue);
    await channel.close();
    const window = await CpuWindow.open({ broker: broker ? [broker.pid] : [] });
    child = spawn(queue);
    const watch = await (options.watch ?? watchPublisher)(child, options.timeoutMs);
    const { confirmedAt, cpu: producer } = await watch.finish();
    const { broker: brokerCpu } = await window.close();
    const check = await connection.createChannel();
    const { messageCount } = await check.checkQueue(queue);
    await check.close();
    const elapsedMs = confirmedAt - watch.publishedAt;
    return {
      count,
      queued: messageCount,
      elapsedMs,
      perSecond: count / elapsedMs * 1000,
      loadAverage,
      cpu: {
        ...(producer === undefined ? {} : { producer }),
        ...(brokerCpu === undefined ? {} : { broker: brokerCpu }),
      },
    };
  } finally {
    if (child) await stopAll([child]);
    // What tareas' producer declares besides the queue, if it ran.
    await deleteAll(connection, {
      queues: [queue, deadQueue(queue)],
      exchanges: [eventsExchange(queue)],
    });
    await connection.close();
  }
}

/**
 * Spawns the bare consumer on a fresh, already declared queue and measures spawn → `bench ready`
 * (parent's clock at the line) and VmRSS right after.
 */
export async function runBareStartup(): Promise<StartupRun> {
  const url = amqpUrl();
  const queue = randomQueueName("bare");
  const connection = await connect(url);
  // Declared beforehand, as ours is: both processes then declare a queue that already exists.
  const channel = await connection.createChannel();
  await declareFloorQueue(channel, queue);
  await channel.close();
  const child = spawnDeno(benchFile("_bare_consumer.ts"), ["--queue", queue], {
    name: "bare-consumer",
    env: { AMQP_URL: url },
  });
  try {
    const ready = await child.waitForReport("ready", READY_TIMEOUT_MS);
    const rssKiB = await readRssKiB(child.pid);
    return { startupMs: ready.line.at - child.spawnedAt, rssKiB };
  } finally {
    await child.stop();
    await deleteAll(connection, { queues: [queue] });
    await connection.close();
  }
}
