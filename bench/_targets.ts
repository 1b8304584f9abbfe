/**
 * The goals of the throughput issue and the ratios they are judged on, taken within each
 * repetition (the systems of one repetition ran one after the other, so a ratio compares runs
 * that shared the machine's state).
 * @module
 */
import type { ThroughputRun } from "./_results.ts";

/** Goal: our throughput at least this fraction of the floor's (publisher running), a–c. */
export const THROUGHPUT_GOAL = 0.9;
/** Goal: our worker's CPU per task at most this many times the bare consumer's. */
export const CPU_GOAL = 1.5;
/** Goal: our short-task setting at least this many times BullMQ's best concurrency. */
export const SHORT_GOAL = 2;
/** Goal: our publish rate at least this fraction of the raw confirm-channel rate. */
export const PUBLISH_GOAL = 0.9;
/** Goal: after a broker restart, the next completion within this many ms. */
export const RECOVERY_GOAL_MS = 1_000;
/** Goal: peak memory of `produce --wait` below this many MiB. */
export const SCALE_PEAK_GOAL_MIB = 300;
/** Goal: memory of `produce --wait` per task beyond the one-task baseline, at most this many KiB. */
export const SCALE_PER_TASK_GOAL_KIB = 0.3;
/** Goal: time from a cluster node's SIGKILL to the next completion, p50 below this many ms. */
export const CLUSTER_GOAL_MS = 1_000;
/** Goal: failover p50 at most this many ms. */
export const FAILOVER_GOAL_MS = 50;
/** Goal: our start-up at most this many times the bare script's. */
export const STARTUP_GOAL = 2;
/** Goal: our idle RSS at most this many times the bare script's. */
export const RSS_GOAL = 1.5;
/** Goal: `producer.call`'s round trip (p50) at most this many times a bare request/reply's. */
export const CALL_FLOOR_GOAL = 2;
/** Goal: `producer.call`'s round trip (p50) over BullMQ's `waitUntilFinished`, below this. */
export const CALL_BULLMQ_GOAL = 1;
/**
 * The promise for delayed tasks (on an idle system), checked at scale: none starts early,
 * and the 99th percentile starts at most this many ms after its time.
 */
export const DELAY_LATENESS_GOAL_MS = 1_000;

/** Throughput runs of one scenario: per variant key, one slot per repetition (`undefined`: failed). */
export type RunsByVariant = Record<string, (ThroughputRun | undefined)[]>;

/** The number of repetitions recorded in `runs`. */
export function repetitions(runs: RunsByVariant): number {
  return Math.max(0, ...Object.values(runs).map((slots) => slots.length));
}

/**
 * Per-repetition ratios `numerator(rep) / denominator(rep)`, for the repetitions where both are
 * defined.
 */
export function ratiosPerRep(
  reps: number,
  numerator: (rep: number) => number | undefined,
  denominator: (rep: number) => number | undefined,
): number[] {
  const out: number[] = [];
  for (let rep = 0; rep < reps; rep++) {
    const a = numerator(rep);
    const b = denominator(rep);
    if (a !== undefined && b !== undefined && b > 0 && Number.isFinite(a / b)) out.push(a / b);
  }
  return out;
}

/** Tasks per second of variant `key` in repetition `rep`. */
export function rateOf(runs: RunsByVariant, key: string, rep: number): number | undefined {
  return runs[key]?.[rep]?.tasksPerSecond;
}

/** The best tasks per second among `keys` in repetition `rep` (with the key that reached it). */
export function bestOf(
  runs: RunsByVariant,
  keys: readonly string[],
  rep: number,
): { key: string; rate: number } | undefined {
  let best: { key: string; rate: number } | undefined;
  for (const key of keys) {
    const rate = rateOf(runs, key, rep);
    if (rate !== undefined && (best === undefined || rate > best.rate)) best = { key, rate };
  }
  return best;
}

/** Consumer CPU seconds per task of variant `key` in repetition `rep`. */
export function consumerCpuPerTask(
  runs: RunsByVariant,
  key: string,
  rep: number,
): number | undefined {
  const run = runs[key]?.[rep];
  if (!run || run.cpu.consumers === undefined || run.completed === 0) return undefined;
  return run.cpu.consumers / run.completed;
}

/**
 * Whether a goal's verdict is still open: the ratios' range straddles the goal (some repetitions
 * meet it, some do not), or there are none yet.
 */
export function straddles(ratios: readonly number[], goal: number): boolean {
  if (ratios.length === 0) return true;
  return Math.min(...ratios) < goal && Math.max(...ratios) >= goal;
}
