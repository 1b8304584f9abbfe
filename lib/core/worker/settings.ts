/**
 * A worker's options, checked once (by the rules `createWorker` and `deno task work` share, in
 * `../options.ts`) into the settings it runs with.
 * @module
 */
import { UsageError } from "../errors.ts";
import type { TaskHandler } from "../handler.ts";
import { checkNumber, checkPrefetch, checkQueue, checkWorkerName } from "../options.ts";
import { DEFAULT_NAME, MAX_ID_LENGTH } from "../task.ts";
import { printable } from "../text.ts";
import { DEFAULT_URL, parseBrokerUrls } from "../url.ts";
import type { WorkerObserver, WorkerOptions } from "./types.ts";

/** What a worker runs with: its options checked, defaults filled in. */
export interface WorkerSettings {
  /** Broker URL, or a cluster's list. */
  url: string;
  /** Work queue. */
  queue: string;
  /** Name in events and logs. */
  name: string;
  /** Handlers by task name. */
  handlers: Map<string, TaskHandler<never>>;
  /** AMQP heartbeat in seconds. */
  heartbeat: number;
  /** Handlers running at once. */
  concurrency: number;
  /** Unacked deliveries the broker may hand it. */
  prefetch: number;
  /** Longest a handler may run, 0 for no limit. */
  taskTimeoutMs: number;
  /** Largest message body accepted. */
  maxBody: number;
  /** Seconds of simulated work per unit of complexity. */
  timeScale: number;
  /** Attempts before a failing task is dead-lettered. */
  maxAttempts: number;
  /** Delay before the first retry, doubling on each. */
  retryDelayMs: number;
  /** Aborting it closes the worker. */
  signal: AbortSignal | undefined;
  /** Where its measures go. */
  metrics: WorkerObserver | undefined;
}

/**
 * Checks a worker's options.
 *
 * @throws {UsageError} naming the first option out of range, or when there is no handler.
 */
export function workerSettings<P>(options: WorkerOptions<P>): WorkerSettings {
  const url = options.url ?? DEFAULT_URL;
  parseBrokerUrls(url);
  const concurrency = checkNumber("concurrency", options.concurrency);
  const prefetch = checkNumber("prefetch", options.prefetch ?? concurrency);
  checkPrefetch(prefetch, concurrency);
  return {
    url,
    queue: checkQueue(options.queue),
    name: checkWorkerName(options.name ?? defaultName()),
    handlers: handlersOf(options),
    heartbeat: checkNumber("heartbeat", options.heartbeat),
    concurrency,
    prefetch,
    taskTimeoutMs: checkNumber("taskTimeout", options.taskTimeout),
    maxBody: checkNumber("maxBody", options.maxBody),
    timeScale: checkNumber("timeScale", options.timeScale),
    maxAttempts: checkNumber("maxAttempts", options.maxAttempts),
    retryDelayMs: checkNumber("retryDelay", options.retryDelay),
    signal: options.signal,
    metrics: options.metrics,
  };
}

/** The handlers of `options` by task name; `handler` is the default name's. */
function handlersOf<P>(options: WorkerOptions<P>): Map<string, TaskHandler<never>> {
  const handlers = new Map(Object.entries(options.handlers ?? {}));
  if (options.handler !== undefined) {
    if (handlers.has(DEFAULT_NAME)) {
      throw new UsageError(`Invalid handlers: give handler or handlers.${DEFAULT_NAME}, not both`);
    }
    handlers.set(DEFAULT_NAME, options.handler as TaskHandler<never>);
  }
  if (handlers.size === 0) {
    throw new UsageError(
      "Invalid handler: createWorker needs the function that runs each task (its handler " +
        "option, or handlers by task name; sleepHandler is the demo's simulated work)",
    );
  }
  for (const [name, handler] of handlers) {
    if (typeof handler !== "function" || name === "" || name.length > MAX_ID_LENGTH) {
      throw new UsageError(
        `Invalid handlers: "${
          printable(name.slice(0, MAX_ID_LENGTH))
        }" must be a function, named ` +
          `by 1 to ${MAX_ID_LENGTH} characters`,
      );
    }
  }
  return handlers;
}

/**
 * `<hostname>-<pid>`, or `worker-<pid>` when the program may not read the host name: asking for
 * it would stop a program at a terminal at a permission prompt.
 */
function defaultName(): string {
  const { state } = Deno.permissions.querySync({ name: "sys", kind: "hostname" });
  return state === "granted" ? `${Deno.hostname()}-${Deno.pid}` : `worker-${Deno.pid}`;
}
