/**
 * The floor: bare amqplib on the same broker and queue type as tareas. A confirm-channel publisher
 * and K consumer processes with prefetch P that ack each message; no events, no task decoding.
 * Whatever tareas adds on top of this loop is its overhead.
 * @module
 */
import { connect, declareFloorQueue, deleteAll } from "./_amqp.ts";
import { type Child, readRssKiB, spawnDeno, stopAll } from "./_proc.ts";
import {
  type StartupRun,
  type ThroughputOptions,
  type ThroughputRun,
  throughputRun,
  throughputTimeoutMs,
} from "./_results.ts";
import { amqpUrl, benchFile, randomQueueName } from "./_util.ts";

const READY_TIMEOUT_MS = 30_000;

/**
 * Runs N no-op messages through a fresh quorum queue: starts K bare consumers (prefetch P, each a
 * separate Deno process), waits until all are consuming, then spawns the publisher. Timed from the
 * publisher's first publish to the last consumer's last ack.
 *
 * @example
 * ```ts
 * const run = await runFloorThroughput({ tasks: 10_000, consumers: 1, prefetch: 1, concurrency: 1 });
 * ```
 */
export async function runFloorThroughput(options: ThroughputOptions): Promise<ThroughputRun> {
  const url = amqpUrl();
  const queue = randomQueueName("floor");
  const timeoutMs = options.timeoutMs ?? throughputTimeoutMs(options.tasks);
  const connection = await connect(url);
  const children: Child[] = [];
  try {
    const channel = await connection.createChannel();
    await declareFloorQueue(channel, queue);
    await channel.close();
    const env = { AMQP_URL: url };
    for (let i = 0; i < options.consumers; i++) {
      children.push(
        spawnDeno(benchFile("_bare_consumer.ts"), [
          "--queue",
          queue,
          "--prefetch",
          String(options.prefetch),
        ], { name: `floor-consumer-${i + 1}`, env }),
      );
    }
    await Promise.all(children.map((c) => c.waitForReport("ready", READY_TIMEOUT_MS)));
    const publisher = spawnDeno(benchFile("_floor_publisher.ts"), [
      "--queue",
      queue,
      "--count",
      String(options.tasks),
      "--stops",
      String(options.consumers),
    ], { name: "floor-publisher", env });
    children.push(publisher);
    const publishing = await publisher.waitForReport("publishing", READY_TIMEOUT_MS);
    const publishedAt = Number(publishing.fields[0]);
    const confirmed = await publisher.waitForReport("confirmed", timeoutMs);
    const consumers = children.slice(0, options.consumers);
    const dones = await Promise.all(consumers.map((c) => c.waitForReport("done", timeoutMs)));
    return throughputRun(
      options.tasks,
      { publishedAt, confirmedAt: Number(confirmed.fields[0]) },
      dones.map((d) => {
        const [completed, first, last] = d.fields.map(Number) as [number, number, number];
        return { completed, first, last };
      }),
    );
  } finally {
    await stopAll(children);
    await deleteAll(connection, { queues: [queue] });
    await connection.close();
  }
}

/**
 * Spawns the bare consumer on a fresh, already declared queue and measures spawn → `bench ready` (parent's clock at
 * the line) and VmRSS right after.
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
