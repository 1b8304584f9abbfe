/**
 * BullMQ, the peer: the same scenarios on the local Redis, with workers as separate Deno processes
 * and default settings except where the scenario sets them (concurrency, `removeOnComplete`).
 * @module
 */
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { type Child, spawnDeno, stopAll } from "./_proc.ts";
import { CpuWindow, readRssKiB, serverOf } from "./_procfs.ts";
import { watchPublisher } from "./floor.ts";
import {
  type ConsumerReport,
  type FailoverRun,
  type StartupRun,
  type ThroughputOptions,
  type ThroughputRun,
  throughputRun,
  throughputTimeoutMs,
} from "./_results.ts";
import { benchFile, nowMs, randomQueueName, redisUrl, withTimeout } from "./_util.ts";

const READY_TIMEOUT_MS = 30_000;

/** The Redis server's version, e.g. `Redis 7.0.15`. */
export async function redisVersion(): Promise<string> {
  const redis = new Redis(redisUrl());
  try {
    const info = await redis.info("server");
    return `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? "?"}`;
  } finally {
    redis.disconnect();
  }
}

/** Removes everything BullMQ keeps in Redis for `name`. */
export async function obliterate(name: string): Promise<void> {
  const connection = new Redis(redisUrl());
  const queue = new Queue(name, { connection });
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Spawns `bench/_bullmq_worker.ts` on `queue` (`mode`: count, hold or result). */
export function spawnWorker(
  queue: string,
  concurrency: number,
  mode: string,
  name: string,
): Child {
  return spawnDeno(benchFile("_bullmq_worker.ts"), [
    "--queue",
    queue,
    "--concurrency",
    String(concurrency),
    "--mode",
    mode,
  ], { name, env: { REDIS_URL: redisUrl() } });
}

/**
 * Runs N no-op jobs through BullMQ: K worker processes with concurrency P, then a producer process
 * that adds the jobs with `addBulk`. Timed from the producer's first add to the last job completed,
 * as reported by the workers. CPU: the workers and `redis-server` over that window, the producer
 * from its first add to its exit.
 */
export async function runBullmqThroughput(options: ThroughputOptions): Promise<ThroughputRun> {
  const queue = randomQueueName("bullmq");
  const timeoutMs = options.timeoutMs ?? throughputTimeoutMs(options.tasks);
  const loadAverage = Deno.loadavg()[0]!;
  const redis = await serverOf(redisUrl());
  const workers: Child[] = [];
  const children: Child[] = [];
  try {
    for (let i = 0; i < options.consumers; i++) {
      workers.push(spawnWorker(queue, options.prefetch, "count", `bullmq-worker-${i + 1}`));
    }
    children.push(...workers);
    await Promise.all(workers.map((w) => w.waitForReport("ready", READY_TIMEOUT_MS)));
    const counts = new Map<Child, ConsumerReport>();
    const { promise: allDone, resolve: done } = Promise.withResolvers<void>();
    for (const worker of workers) {
      worker.onLine((line) => {
        const match = /^bench count (\d+) (\S+) (\S+)$/.exec(line.text);
        if (!match) return;
        const [completed, first, last] = match.slice(1).map(Number) as [number, number, number];
        counts.set(worker, { completed, first, last });
        let total = 0;
        for (const c of counts.values()) total += c.completed;
        if (total >= options.tasks) done();
      });
    }
    const window = await CpuWindow.open({
      consumers: workers.map((w) => w.pid),
      broker: redis ? [redis.pid] : [],
    });
    const producer = spawnDeno(benchFile("_bullmq_producer.ts"), [
      "--queue",
      queue,
      "--count",
      String(options.tasks),
    ], { name: "bullmq-producer", env: { REDIS_URL: redisUrl() } });
    children.push(producer);
    const watch = await watchPublisher(producer, timeoutMs);
    await withTimeout(allDone, timeoutMs, `${options.tasks} BullMQ completions`);
    const cpu = await window.close();
    const published = await watch.finish();
    return throughputRun(
      options.tasks,
      { publishedAt: watch.publishedAt, confirmedAt: published.confirmedAt },
      [...counts.values()],
      {
        loadAverage,
        cpu: { ...cpu, ...(published.cpu === undefined ? {} : { producer: published.cpu }) },
      },
    );
  } finally {
    await stopAll(children);
    await obliterate(queue);
  }
}

/** Options for {@linkcode runBullmqFailover}. */
export interface BullmqFailoverOptions {
  /** How many kills, each on its own queue, all at the same time. @default 3 */
  kills?: number;
  /** Give up on one redelivery after this long. @default 180_000 */
  timeoutMs?: number;
}

/**
 * Measures BullMQ's redelivery after a crash with default `lockDuration` and `stalledInterval`
 * (30 s each): per trial, two idle worker processes on a fresh queue, one job added, the worker
 * that starts it SIGKILLed, timed until the other starts it. Trials run concurrently, each on its
 * own queue, so the total time stays near one stall cycle.
 */
export async function runBullmqFailover(
  options: BullmqFailoverOptions = {},
): Promise<FailoverRun[]> {
  const kills = options.kills ?? 3;
  const trials = Array.from({ length: kills }, (_, i) => bullmqFailoverTrial(i + 1, options));
  return await Promise.all(trials);
}

async function bullmqFailoverTrial(
  index: number,
  options: BullmqFailoverOptions,
): Promise<FailoverRun> {
  const name = randomQueueName("bullmq-failover");
  const timeoutMs = options.timeoutMs ?? 180_000;
  const workers = [
    spawnWorker(name, 1, "hold", `bullmq-failover-${index}a`),
    spawnWorker(name, 1, "hold", `bullmq-failover-${index}b`),
  ];
  const connection = new Redis(redisUrl());
  const queue = new Queue(name, { connection });
  try {
    await Promise.all(workers.map((w) => w.waitForReport("ready", READY_TIMEOUT_MS)));
    const job = await queue.add("task", { seq: 1, complexity: 1 });
    const isStart = (text: string) => text.startsWith(`bench started ${job.id} `);
    const first = await Promise.any(
      workers.map((w) =>
        w.waitForLine((l) => isStart(l.text), {
          timeoutMs: READY_TIMEOUT_MS,
          what: "the job to start",
        })
          .then(() => w)
      ),
    );
    const other = workers.find((w) => w !== first)!;
    const restarted = other.waitForLine((l) => isStart(l.text), {
      timeoutMs,
      what: "the killed worker's job to start again",
    });
    const killedAt = nowMs();
    first.kill("SIGKILL");
    const line = await restarted;
    return { latencyMs: line.at - killedAt };
  } finally {
    await stopAll(workers);
    await queue.close();
    connection.disconnect();
    await obliterate(name);
  }
}

/** Spawns a BullMQ worker and measures spawn → `bench ready` and VmRSS right after. */
export async function runBullmqStartup(): Promise<StartupRun> {
  const name = randomQueueName("bullmq-startup");
  const worker = spawnWorker(name, 1, "count", "bullmq-startup");
  try {
    const ready = await worker.waitForReport("ready", READY_TIMEOUT_MS);
    const rssKiB = await readRssKiB(worker.pid);
    return { startupMs: ready.line.at - worker.spawnedAt, rssKiB };
  } finally {
    await worker.stop();
    await obliterate(name);
  }
}
