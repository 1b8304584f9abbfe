/**
 * Our workers on a 3-node RabbitMQ cluster of private nodes (`lib/operate/local_cluster.ts`), given the
 * three URLs as one comma-separated `AMQP_URL`: SIGKILL the node that leads the work queue, or a
 * follower, while the workers are busy; how long until the next task completes, and is any task
 * lost or run twice?
 * @module
 */
import { findListener } from "./_procfs.ts";
import { Fixture, type OursOptions } from "./ours.ts";
import { nowMs, Unavailable, withTimeout } from "./_util.ts";
import { canStartCluster, startCluster } from "../lib/operate/local_cluster.ts";

/** Which node was killed. */
export type ClusterTarget = "leader" | "follower";

/** One SIGKILL of a cluster node. */
export interface ClusterKillRun {
  /** The leader of the work queue, or a follower. */
  target: ClusterTarget;
  /**
   * Milliseconds from the SIGKILL to the first `task.completed` of a task that started after it
   * (by the event's own `at`).
   */
  resumeMs: number;
  /** Tasks published (and confirmed) for this kill. */
  published: number;
  /** Of those, tasks never completed (within the timeout after the node came back). */
  lost: number;
  /** `task.completed` events beyond the first of each of those tasks. */
  duplicates: number;
}

/** Options of {@linkcode runCluster}. */
export interface ClusterOptions extends OursOptions {
  /** Kills of each kind (leader's node, a follower's node), interleaved. @default 5 */
  kills?: number;
  /** Workers. @default 3 */
  workers?: number;
  /** Give up waiting for one kill's tasks after this long. @default 120_000 */
  timeoutMs?: number;
  /** Called with a line of progress. @default {nothing} */
  onProgress?: (line: string) => void;
}

/** Tasks per kill: 20 ms each, so that 3 workers stay busy for about 4 s. */
const BATCH = 600;
const TASK_SECONDS = 0.02;
/** Completions awaited before the kill, so that it lands while every worker is busy. */
const WARM = 30;

/** Flushes the node's quorum queue metadata tables, as `KillOptions` in lib/operate/local_broker.ts does. */
const FLUSH_QUORUM_METADATA =
  `[dets:sync(T) || T <- dets:all(), is_atom(T), lists:prefix("ra_", atom_to_list(T))].`;

/**
 * Starts a 3-node cluster and W workers (prefetch 1, `AMQP_URL` = the three URLs); then, for
 * `kills` leader kills and `kills` follower kills, interleaved: publishes 600 tasks of 20 ms
 * through a surviving node, waits for 30 to complete, flushes the target's quorum metadata,
 * SIGKILLs its `beam.smp` and starts it again at once; times the first completion of a task that
 * started after the kill (the benchmark's event queues live on a surviving node), then waits
 * until every task of the batch has completed, counting the lost and the duplicated.
 *
 * @throws {Unavailable} when `rabbitmq-server` is missing.
 */
export async function runCluster(options: ClusterOptions = {}): Promise<ClusterKillRun[]> {
  if (!await canStartCluster()) {
    throw new Unavailable("rabbitmq-server is not installed, so no cluster can be started");
  }
  const kills = options.kills ?? 5;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const progress = options.onProgress ?? (() => {});
  await using cluster = await startCluster();
  let tapNode = 0;
  await using fixture = await Fixture.open(
    "cluster",
    ["worker.online", "task.completed"],
    { ...options, url: cluster.urls[tapNode]!, childUrl: cluster.url },
  );
  const workers = Array.from(
    { length: options.workers ?? 3 },
    () => fixture.spawnWorker(["--prefetch", "1", "--time-scale", String(TASK_SECONDS)]),
  );
  await Promise.all(workers.map(({ child, name }) => fixture.waitOnline(child, name)));
  const completions = new Map<string, number>();
  let remaining = new Set<string>();
  let batchDone = Promise.withResolvers<void>();
  fixture.tap.onEvent(({ event }) => {
    if (event.type !== "task.completed") return;
    completions.set(event.taskId, (completions.get(event.taskId) ?? 0) + 1);
    if (remaining.delete(event.taskId) && remaining.size === 0) batchDone.resolve();
  });
  const runs: ClusterKillRun[] = [];
  for (let i = 0; i < 2 * kills; i++) {
    const target: ClusterTarget = i % 2 === 0 ? "leader" : "follower";
    const leader = await cluster.leader(fixture.queue);
    const victim = target === "leader" ? leader : (leader + 1) % cluster.urls.length;
    if (tapNode === victim) {
      tapNode = (victim + 1) % cluster.urls.length;
      await fixture.reconnect(cluster.urls[tapNode]!);
    }
    batchDone = Promise.withResolvers<void>();
    const ids = await fixture.publishTasks(BATCH, 1);
    remaining = new Set(ids.filter((id) => !completions.has(id)));
    if (remaining.size === 0) batchDone.resolve();
    const batch = new Set(ids);
    let warm = 0;
    await fixture.tap.waitFor(
      (e) => e.event.type === "task.completed" && batch.has(e.event.taskId) && ++warm >= WARM,
      { timeoutMs, what: `${WARM} task.completed before kill ${i + 1}` },
    );
    await cluster.rabbitmqctl(victim, ["eval", FLUSH_QUORUM_METADATA, "--timeout", "5"])
      .catch(() => {});
    const beam = await findListener(cluster.nodes[victim]!.port);
    const killedAt = nowMs();
    if (beam) Deno.kill(beam.pid, "SIGKILL");
    // Tasks in hand at the kill still complete at once: wait for one that started after it (its
    // handler's start is the event's `at` minus its duration; both on this machine's clock).
    const next = fixture.tap.waitFor(
      (e) =>
        e.event.type === "task.completed" &&
        Date.parse(e.event.at) - (e.event.durationMs ?? 0) >= Math.floor(killedAt),
      { timeoutMs, what: `a task started and completed after SIGKILL of the ${target}'s node` },
    );
    await cluster.kill(victim, { flushQuorumMetadata: false }); // reaps what the SIGKILL left
    // Started at once: a worker that cannot move to another node resumes when this one is back,
    // and that shows in the figure rather than as a timeout.
    const restarted = cluster.start(victim);
    restarted.catch(() => {}); // awaited below; handled here in case `next` throws first
    const resumed = await next;
    await restarted;
    // Lost tasks are counted, not thrown: wait for the batch, up to the timeout.
    await withTimeout(batchDone.promise, timeoutMs, `the tasks of kill ${i + 1}`).catch(() => {});
    const lost = ids.filter((id) => !completions.has(id)).length;
    const duplicates = ids.reduce((n, id) => n + Math.max(0, (completions.get(id) ?? 0) - 1), 0);
    const resumeMs = Date.parse(resumed.event.at) - killedAt;
    runs.push({ target, resumeMs, published: ids.length, lost, duplicates });
    progress(
      `cluster kill ${i + 1} (${target}): next task.completed after ` +
        `${runs.at(-1)!.resumeMs.toFixed(0)} ms, ${lost} lost, ${duplicates} duplicated`,
    );
  }
  return runs;
}
