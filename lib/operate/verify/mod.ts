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
import { VerifyRun } from "./_run.ts";
import type { VerifyOptions, VerifyReport } from "./types.ts";

export type { BrokerMode } from "./broker.ts";
export type {
  Duplicate,
  Fault,
  KillRecord,
  Run,
  Verdict,
  VerifyOptions,
  VerifyReport,
} from "./types.ts";
export { type WorkerCommand, workerCommand } from "./workers.ts";

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
