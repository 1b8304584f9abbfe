/**
 * Typed errors. Every expected failure is a {@linkcode TareasError} whose message is one line fit
 * to show a person; anything else thrown is a bug. Exit codes are not decided here: the command
 * line's layer (`lib/cli/main.ts`) maps each class to one.
 * @module
 */

/**
 * Base class of every expected failure in tareas.
 *
 * @example
 * ```ts
 * try {
 *   await producer.enqueue(payload);
 * } catch (error) {
 *   if (error instanceof TareasError) console.error(error.message); // one line
 *   else throw error;
 * }
 * ```
 */
export class TareasError extends Error {
  /** Creates an error with a one-line message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TareasError";
  }
}

/**
 * A bad flag, option or value: the caller must change it (the commands exit 2).
 *
 * @example
 * ```ts
 * await createWorker({ concurrency: 0 }).catch((error) => console.log(error instanceof UsageError));
 * ```
 */
export class UsageError extends TareasError {
  /** Creates a usage error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
  }
}

/**
 * The broker refused our configuration: a queue that exists with other arguments, refused
 * credentials. Retrying cannot help (the commands exit 2).
 * @example
 * ```ts
 * try {
 *   await createProducer({ queue: "made-by-someone-else" });
 * } catch (error) {
 *   if (!(error instanceof ConfigError)) throw error;
 *   console.error(error.message); // Cannot declare queue "made-by-someone-else": it exists ...
 * }
 * ```
 */
export class ConfigError extends TareasError {
  /** Creates a configuration error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

/**
 * The broker could not be reached within the bounded retries.
 *
 * @example
 * ```ts
 * try {
 *   await createWorker({ url: "amqp://127.0.0.1:1" });
 * } catch (error) {
 *   if (error instanceof BrokerUnreachableError) console.error(error.message);
 * }
 * ```
 */
export class BrokerUnreachableError extends TareasError {
  /** Creates an unreachable-broker error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BrokerUnreachableError";
  }
}

/**
 * A payload or message body that is not a valid task: `enqueue` refuses it, and a worker
 * dead-letters such a message with this error's message as the reason.
 *
 * @example
 * ```ts
 * await producer.enqueue(10n).catch((error) => console.log(error instanceof TaskFormatError));
 * ```
 */
export class TaskFormatError extends TareasError {
  /** Creates a task format error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TaskFormatError";
  }
}

/**
 * A task handler ran longer than the task timeout.
 *
 * @example
 * ```ts
 * worker.addEventListener("task.failed", (e) => {
 *   if (e.detail.reason?.startsWith("Task timed out")) console.warn("too slow:", e.detail.taskId);
 * });
 * // inside a handler, ctx.signal.reason is a TaskTimeoutError when the timeout fired
 * ```
 */
export class TaskTimeoutError extends TareasError {
  /** Creates a timeout error for a handler that ran `ms` milliseconds. */
  constructor(ms: number) {
    super(`Task timed out after ${ms / 1000} s`);
    this.name = "TaskTimeoutError";
  }
}

/**
 * The connection that delivered a task was lost while its handler ran: the broker has requeued
 * the task for another worker, and the handler's signal aborts with this reason.
 *
 * @example
 * ```ts
 * const handler: TaskHandler = async (task, { signal }) => {
 *   signal.addEventListener("abort", () => {
 *     if (signal.reason instanceof ConnectionLostError) console.log("another worker takes it");
 *   });
 * };
 * ```
 */
export class ConnectionLostError extends TareasError {
  /** Creates the error a lost connection aborts a running handler with. */
  constructor() {
    super("The connection that delivered it was lost; the broker gives it to another worker");
    this.name = "ConnectionLostError";
  }
}

/** Marks a permanent failure, whichever copy of tareas made the error (see `PermanentError`). */
const PERMANENT = Symbol.for("tareas.permanent");

/**
 * Thrown by a handler, fails its task for good: it is dead-lettered at once, with this message as
 * its reason, and not retried (like Celery's `Reject` or BullMQ's `UnrecoverableError`). Throw it
 * when running the task again cannot help: a payload that can never be processed, a resource
 * that is gone.
 *
 * @example
 * ```ts
 * const handler: TaskHandler<{ image: string }> = (task) => {
 *   if (!task.payload.image.endsWith(".png")) throw new PermanentError("Not a PNG image");
 * };
 * ```
 */
export class PermanentError extends TareasError {
  /** Always true: what {@linkcode isPermanentError} looks for. */
  readonly [PERMANENT] = true;

  /** Creates a permanent failure with `message` as the task's dead-letter reason. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PermanentError";
  }
}

/**
 * Whether `error` is a {@linkcode PermanentError}, also one made by another copy of tareas (a
 * handler module that imports it from elsewhere).
 */
export function isPermanentError(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as Record<symbol, unknown>)[PERMANENT] === true;
}

/**
 * The task a caller waits for (`producer.call`) was dead-lettered: its handler failed for good,
 * its attempts ran out, or it was not a task a worker could run.
 *
 * @example
 * ```ts
 * try {
 *   await producer.call({ image: "cat.png" }, { name: "resize" });
 * } catch (error) {
 *   if (error instanceof TaskDeadError) console.error(error.taskId, error.reason);
 * }
 * ```
 */
export class TaskDeadError extends TareasError {
  /** The task's id. */
  readonly taskId: string;
  /** Why it was dead-lettered, as its dead letter says. */
  readonly reason: string;

  /** Creates the error of task `taskId`, dead-lettered for `reason`. */
  constructor(taskId: string, reason: string) {
    super(`Task ${taskId} was dead-lettered: ${reason}`);
    this.name = "TaskDeadError";
    this.taskId = taskId;
    this.reason = reason;
  }
}

/**
 * A short, secret-free, one-line description of any thrown value: the first line of an error's
 * message, with network error codes in words.
 *
 * @example
 * ```ts
 * errorMessage(new Error("connect ECONNREFUSED 127.0.0.1:5672")); // the message's first line
 * ```
 */
export function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host not found";
  if (code === "ETIMEDOUT") return "connection timed out";
  if (code === "ECONNRESET") return "connection reset";
  return error.message.split("\n")[0]!;
}
