/**
 * Small helpers shared by the benchmark runners and their child scripts: a clock comparable across
 * processes, bounded waits, and the broker and Redis addresses.
 * @module
 */

/**
 * Milliseconds since the Unix epoch with sub-millisecond resolution. Every process on the machine
 * reads the same wall clock, so a child can print this and the parent can subtract its own.
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The broker URL: `AMQP_URL`, or the local broker as guest. */
export function amqpUrl(): string {
  return Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";
}

/** The Redis URL for BullMQ: `REDIS_URL`, or the local Redis. */
export function redisUrl(): string {
  return Deno.env.get("REDIS_URL") ?? "redis://127.0.0.1:6379";
}

/** Thrown when something awaited did not happen in time; the message says what was awaited. */
export class BenchTimeoutError extends Error {
  /** Creates a timeout error naming what was awaited and for how long. */
  constructor(what: string, ms: number) {
    super(`Timed out after ${ms} ms waiting for ${what}`);
    this.name = "BenchTimeoutError";
  }
}

/**
 * Thrown by a runner that cannot run here (a missing file, binary or library function): the
 * suite records the message as a note on a skipped measurement, not as a failure.
 */
export class Unavailable extends Error {
  /** Creates the error; `message` says what is missing. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "Unavailable";
  }
}

/**
 * Resolves with `promise`, or rejects with a {@linkcode BenchTimeoutError} naming `what` after
 * `ms` milliseconds. The timer is cleared either way.
 *
 * @example
 * ```ts
 * await withTimeout(child.status, 5_000, "the publisher to exit");
 * ```
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchTimeoutError(what, ms)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A random queue name with a readable prefix, so leftovers can be traced to the benchmark. */
export function randomQueueName(prefix: string): string {
  return `bench.${prefix}.${crypto.randomUUID()}`;
}

/** Absolute path of the repository root (the parent of `bench/`). */
export const REPO_ROOT: string = new URL("..", import.meta.url).pathname;

/** Absolute path of a file under `bench/`. */
export function benchFile(name: string): string {
  return new URL(name, import.meta.url).pathname;
}
