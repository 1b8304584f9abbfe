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
import { TareasError } from "../../core/errors.ts";
import type { BrokerMode, BrokerVersion } from "./broker.ts";
import type { Verdict } from "./checker.ts";
import { VerifyRun } from "./_run.ts";
import type { WorkerCommand } from "./workers.ts";

export type { BrokerMode } from "./broker.ts";
export type { Duplicate, Fault, Run, Verdict } from "./checker.ts";
export { type WorkerCommand, workerCommand } from "./workers.ts";

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
  try {
    return await run.start();
  } catch (error) {
    if (options.signal?.aborted) throw new VerifyStoppedError(run.completed, options.tasks);
    throw error;
  } finally {
    await run.cleanUp();
  }
}
