/**
 * The task handler contract and the built-in handler (the original simulated work: sleep for the
 * task's complexity).
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { UsageError } from "./errors.ts";
import type { Task } from "./task.ts";

/** What a handler gets besides the task. */
export interface TaskContext {
  /** Aborted when the task times out; stop work and throw when it fires. */
  signal: AbortSignal;
  /** 1 for the first delivery of the task, counting every delivery since. */
  attempt: number;
  /** Whether the broker flagged this delivery as a redelivery. */
  redelivered: boolean;
  /** A logger for the handler's own lines. */
  logger: Logger;
  /** Seconds of simulated work per unit of complexity (`--time-scale`). */
  timeScale: number;
}

/**
 * Runs one task. Resolve when done (the task is then acked); throw to fail the attempt (it is
 * retried with backoff, then dead-lettered).
 *
 * @example
 * ```ts
 * // my_handler.ts, run with: deno task work --handler ./my_handler.ts
 * export default async function (task: Task, ctx: TaskContext) {
 *   const response = await fetch(`https://example.com/jobs/${task.id}`, { signal: ctx.signal });
 *   if (!response.ok) throw new Error(`HTTP ${response.status}`);
 * }
 * ```
 */
export type TaskHandler = (task: Task, context: TaskContext) => unknown;

/** The built-in handler: sleeps `complexity × timeScale` seconds, or until the signal aborts. */
export function sleepHandler(task: Task, context: TaskContext): Promise<void> {
  return delay(task.complexity * context.timeScale * 1000, context.signal);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    if (ms <= 0) return resolve(); // A timer costs milliseconds: no-op tasks must not pay it.
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Loads a handler module (path relative to the working directory, or a URL) and returns its
 * default export.
 *
 * @throws {UsageError} when the module cannot be loaded or exports no function.
 */
export async function loadHandler(specifier: string): Promise<TaskHandler> {
  let url: URL;
  try {
    url = /^[a-z]+:/i.test(specifier)
      ? new URL(specifier)
      : new URL(specifier, `file://${Deno.cwd()}/`);
  } catch {
    throw new UsageError(`Invalid --handler "${specifier}": not a path or URL`);
  }
  let module: { default?: unknown };
  try {
    module = await import(url.href);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw new UsageError(`Cannot load --handler "${specifier}": ${reason}`, { cause: error });
  }
  if (typeof module.default !== "function") {
    throw new UsageError(`Invalid --handler "${specifier}": its default export is not a function`);
  }
  return module.default as TaskHandler;
}
