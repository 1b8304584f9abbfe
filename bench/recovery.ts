/**
 * Recovery after a broker restart: our workers on a private RabbitMQ node (started from the local
 * `rabbitmq-server`, see `lib/operate/local_broker.ts`) that is SIGKILLed and started again while they have
 * work; how long after the node accepts connections again do they complete tasks?
 * @module
 */
import { canStartPrivateNode, startPrivateNode } from "../lib/operate/local_broker.ts";
import { redactUrl } from "../lib/core/url.ts";
import { Fixture, type OursOptions } from "./ours.ts";
import { BenchTimeoutError, nowMs, Unavailable } from "./_util.ts";

/** One restart of the broker. */
export interface RecoveryRun {
  /** Milliseconds from the SIGKILL of the node to its AMQP port accepting connections again. */
  downMs: number;
  /** Milliseconds from the port accepting connections to the next `task.completed` (any worker). */
  resumeMs: number;
  /** Milliseconds from the port accepting connections until every worker had completed a task. */
  allResumedMs: number;
}

/** Options of {@linkcode runRecovery}. */
export interface RecoveryOptions extends OursOptions {
  /** How many restarts. @default 5 */
  restarts?: number;
  /** Workers. @default 2 */
  workers?: number;
  /** Give up waiting for the workers after one restart after this long. @default 60_000 */
  timeoutMs?: number;
  /** Called with a line of progress. @default {nothing} */
  onProgress?: (line: string) => void;
}

/** Seconds per unit of complexity of the tasks that keep the workers busy (1 unit each). */
const TASK_SECONDS = 0.02;
/** The backlog kept in the queue before each kill, in tasks. */
const BACKLOG = 1_000;

/**
 * Starts a private node, W workers (prefetch 1) on it and a backlog of 20 ms tasks; then, per
 * restart: waits for a completion (the workers are busy), SIGKILLs the node (after flushing its
 * quorum queue metadata: see `KillOptions` in `lib/operate/local_broker.ts`), starts it again and times,
 * from the moment its port accepts a TCP connection (probed every 10 ms), the next
 * `task.completed` and the moment every worker has completed one. Times are the events' own `at`
 * (the workers' clock, the same machine), read through a durable queue that keeps the events
 * published before the benchmark has reconnected.
 *
 * @throws {Unavailable} when `rabbitmq-server` is not installed.
 */
export async function runRecovery(options: RecoveryOptions = {}): Promise<RecoveryRun[]> {
  if (!await canStartPrivateNode()) {
    throw new Unavailable("rabbitmq-server is not installed, so no private node can be restarted");
  }
  const restarts = options.restarts ?? 5;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const progress = options.onProgress ?? (() => {});
  await using node = await startPrivateNode({ namePrefix: "tareas-bench" });
  const tapQueue = `bench.recovery-tap.${crypto.randomUUID()}`;
  await using fixture = await Fixture.open(
    "recovery",
    ["worker.online", "task.completed"],
    { ...options, url: node.url, tapQueue },
  );
  const workers = Array.from(
    { length: options.workers ?? 2 },
    () => fixture.spawnWorker(["--prefetch", "1", "--time-scale", String(TASK_SECONDS)]),
  );
  await Promise.all(workers.map(({ child, name }) => fixture.waitOnline(child, name)));
  const names = new Set(workers.map((w) => w.name));
  const runs: RecoveryRun[] = [];
  for (let i = 0; i < restarts; i++) {
    const queued = await fixture.queued();
    if (queued < BACKLOG) await fixture.publishTasks(BACKLOG - queued, 1);
    await fixture.tap.waitFor((e) => e.event.type === "task.completed", {
      timeoutMs,
      what: "a task.completed before the kill",
      since: nowMs(),
    });
    await node.kill();
    const killedAt = nowMs();
    const accepted = acceptedAt(node.port, AbortSignal.timeout(timeoutMs));
    await node.restart();
    const acceptedMs = await accepted;
    await reconnect(fixture, node.url, timeoutMs);
    const resumed = new Map<string, number>();
    const everyone = fixture.tap.waitFor((e) => {
      if (e.event.type !== "task.completed" || !names.has(e.event.worker)) return false;
      const at = Date.parse(e.event.at);
      if (at < Math.floor(acceptedMs)) return false;
      if (!resumed.has(e.event.worker)) resumed.set(e.event.worker, at);
      return resumed.size === names.size;
    }, { timeoutMs, what: `every worker to complete a task after restart ${i + 1}` });
    await everyone;
    const times = [...resumed.values()];
    runs.push({
      downMs: acceptedMs - killedAt,
      resumeMs: Math.max(0, Math.min(...times) - acceptedMs),
      allResumedMs: Math.max(0, Math.max(...times) - acceptedMs),
    });
    progress(
      `recovery restart ${i + 1}: next task.completed ${runs.at(-1)!.resumeMs.toFixed(0)} ms ` +
        `after the node accepted connections`,
    );
  }
  return runs;
}

/** Resolves with the first moment ({@linkcode nowMs}) `port` accepts a TCP connection. */
async function acceptedAt(port: number, signal: AbortSignal): Promise<number> {
  while (true) {
    signal.throwIfAborted();
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const at = nowMs();
      conn.close();
      return at;
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionRefused)) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Reconnects the fixture's own connection, retrying while the restarted node finishes booting. */
async function reconnect(fixture: Fixture, url: string, timeoutMs: number): Promise<void> {
  const deadline = nowMs() + timeoutMs;
  while (true) {
    try {
      return await fixture.reconnect(url);
    } catch (error) {
      if (nowMs() > deadline) {
        throw new BenchTimeoutError(
          `the benchmark to reconnect to ${redactUrl(url)}: ${error}`,
          timeoutMs,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
