/**
 * The task handler contract and the built-in handler (the original simulated work: sleep for the
 * task's complexity).
 * @module
 */
import { delay } from "./async.ts";
import type { Task } from "./task.ts";

/**
 * What a handler gets besides the task.
 *
 * @example
 * ```ts
 * const handler: TaskHandler = async (task, context: TaskContext) => {
 *   context.logger.info("Attempt {attempt} of {id}", { attempt: context.attempt, id: task.id });
 *   await fetch("https://example.com", { signal: context.signal });
 * };
 * ```
 */
export interface TaskContext {
  /** Aborted when the task times out; stop work and throw when it fires. */
  signal: AbortSignal;
  /** 1 for the first delivery of the task, counting every delivery since. */
  attempt: number;
  /** Whether the broker flagged this delivery as a redelivery. */
  redelivered: boolean;
  /** A logger for the handler's own lines (LogTape's, category `tareas.handler`). */
  logger: TaskLogger;
  /** Seconds of simulated work per unit of complexity (`--time-scale`). */
  timeScale: number;
  /**
   * Reports how far the task has come: a fraction from 0 to 1, or a small JSON object (at most
   * 1 KiB as JSON). Calls are coalesced: the latest value goes out as a `task.progress` event
   * (and to a caller waiting with `producer.call`) at most every 100 ms, so calling it in a tight
   * loop costs next to nothing.
   *
   * @throws {TypeError} for a number outside 0 to 1, or a value that is neither.
   */
  progress(value: number | Record<string, unknown>): void;
}

/**
 * What a handler may log with: messages with `{placeholders}` filled from `properties`, as
 * LogTape formats them, on stderr with the worker's own lines.
 * @example
 * ```ts
 * const handler: TaskHandler = (task, { logger }: { logger: TaskLogger }) => {
 *   logger.warn("Payload of {id} is empty", { id: task.id });
 * };
 * ```
 */
export interface TaskLogger {
  /** Logs at debug level. */
  debug(message: string, properties?: Record<string, unknown>): void;
  /** Logs at info level. */
  info(message: string, properties?: Record<string, unknown>): void;
  /** Logs at warning level. */
  warn(message: string, properties?: Record<string, unknown>): void;
  /** Logs at error level. */
  error(message: string, properties?: Record<string, unknown>): void;
}

/**
 * Runs one task. Resolve when done (the task is then acked): what it resolves with is the task's
 * result, for a caller waiting with `producer.call` (JSON, at most 1 MiB). Throw to fail the
 * attempt (it is retried with backoff, then dead-lettered), or throw a `PermanentError` to
 * dead-letter it at once. `P` is the type of `task.payload`.
 *
 * @example
 * ```ts
 * // resize.ts, run with: deno task work --handler ./resize.ts
 * export default async function (task: Task<{ url: string }>, ctx: TaskContext) {
 *   const response = await fetch(task.payload.url, { signal: ctx.signal });
 *   if (!response.ok) throw new Error(`HTTP ${response.status}`);
 * }
 * ```
 */
export type TaskHandler<P = unknown> = (task: Task<P>, context: TaskContext) => unknown;

/**
 * The built-in handler, the original simulated work: sleeps `complexity × timeScale` seconds, or
 * until the signal aborts.
 * @example
 * ```ts
 * await using worker = await createWorker({ handler: sleepHandler, timeScale: 0.1 });
 * ```
 */
export function sleepHandler(task: Task, context: TaskContext): Promise<void> | void {
  const ms = task.complexity * context.timeScale * 1000;
  if (ms > 0) return delay(ms, context.signal); // No work, no promise: a no-op task costs nothing.
}
