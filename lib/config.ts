/**
 * Configuration, read in one place: command-line flags plus environment become one typed object
 * per entry point. Bad input becomes a {@linkcode UsageError} with a one-line message.
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "./errors.ts";
import { DEFAULT_QUEUE } from "./topology.ts";
import { DEFAULT_URL, redactUrl } from "./url.ts";

/** Settings both entry points share. */
export interface CommonConfig {
  /** Broker URL (`AMQP_URL`). Contains the password: print it only through {@linkcode redactUrl}. */
  url: string;
  /** Work queue name (`--queue`). */
  queue: string;
  /** Heartbeat interval in seconds, 0 to disable (`--heartbeat`). */
  heartbeat: number;
}

/** Worker settings. */
export interface WorkerConfig extends CommonConfig {
  /** Unacked deliveries the broker may hand this worker at once (`--prefetch`). */
  prefetch: number;
  /** Handlers running at once (`--concurrency`). */
  concurrency: number;
  /** Seconds of simulated work per unit of complexity (`--time-scale`). */
  timeScale: number;
  /** Worker name in events and logs (`--name`). */
  name: string;
  /** Path or URL of a handler module, or undefined for the built-in sleep (`--handler`). */
  handler: string | undefined;
  /** Attempts before a failing task is dead-lettered (`--max-attempts`). */
  maxAttempts: number;
  /** Delay before the first retry, in ms; doubles on each retry (`--retry-delay`, seconds). */
  retryDelayMs: number;
  /** Longest a handler may run, in ms, 0 for no limit (`--task-timeout`, seconds). */
  taskTimeoutMs: number;
  /** Largest message body accepted, in bytes (`--max-body`). */
  maxBodyBytes: number;
}

/** Producer settings. */
export interface ProducerConfig extends CommonConfig {
  /** Number of tasks to publish (`--count`). */
  count: number;
  /** Smallest complexity (`--min`). */
  min: number;
  /** Largest complexity (`--max`). */
  max: number;
  /** Stay until every published task has completed (`--wait`). */
  wait: boolean;
  /** Give up waiting after this many ms, 0 for never (`--timeout`, seconds). */
  timeoutMs: number;
  /** Write the run's timeline as SVG to this file (`--timeline`). */
  timeline: string | undefined;
}

/** Environment variables read by every entry point. */
export const ENVIRONMENT_HELP = `Environment:
  AMQP_URL     broker URL (default ${DEFAULT_URL}); the password is never printed
  LOG_LEVEL    trace, debug, info, warning, error (default info)
  LOG_FORMAT   text or json (default text); logs go to stderr`;

/** Exit codes of every entry point. */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  runtime failure (broker unreachable after retries, tasks not confirmed, timeout, forced stop)
  2  usage or configuration error (bad flag or value, queue declared with other arguments,
     credentials refused)`;

const COMMON_HELP = `  --queue NAME         work queue (default ${DEFAULT_QUEUE})
  --heartbeat S        AMQP heartbeat in seconds, 0 disables (default 15)
  -h, --help           show this help`;

/** `deno task work --help`. */
export const WORKER_HELP = `Usage: deno task work [flags]

Consumes tasks from a durable quorum queue and runs them, acking each only once its handler has
finished. A handler that throws is retried with exponential backoff, then dead-lettered to
<queue>.dead; a malformed task is dead-lettered at once. Publishes worker and task events to the
topic exchange <queue>.events. SIGINT/SIGTERM stop consuming, finish the tasks in hand and exit 0;
a second signal exits at once and the broker requeues what was in hand.

Flags:
${COMMON_HELP}
  --prefetch N         unacked tasks the broker may hand this worker (default: --concurrency)
  --concurrency N      tasks run at once (default 1)
  --time-scale F       seconds of simulated work per unit of complexity (default 1)
  --name NAME          worker name in events and logs (default <hostname>-<pid>)
  --handler PATH       module whose default export runs a task (default: sleep complexity)
  --max-attempts N     attempts before a failing task is dead-lettered (default 5)
  --retry-delay S      delay before the first retry, doubling each time (default 1)
  --task-timeout S     abort a handler after S seconds, 0 for never (default 600)
  --max-body BYTES     dead-letter bodies larger than this (default 1048576)

${ENVIRONMENT_HELP}

${EXIT_CODES_HELP}

Examples:
  deno task work
  deno task work --concurrency 4 --handler ./my_handler.ts --task-timeout 30`;

/** `deno task produce --help`. */
export const PRODUCER_HELP = `Usage: deno task produce [flags]

Publishes tasks with a random integer complexity to a durable quorum queue as persistent messages
through a confirm channel, and exits 0 only once the broker has confirmed every one. If the
connection drops, it reconnects and publishes again whatever was not confirmed (same message id).
With --wait it stays until every task has completed, showing progress, then prints how many tasks
each worker ran and a timeline of the run.

Flags:
${COMMON_HELP}
  --count N            tasks to publish (default 10)
  --min S              smallest complexity in seconds (default 1)
  --max S              largest complexity in seconds (default 5)
  --wait               stay until every task has completed, then print a summary
  --timeout S          with --wait, give up after S seconds, 0 for never (default 0)
  --timeline FILE.svg  with --wait, also write the timeline as an SVG picture

${ENVIRONMENT_HELP}

${EXIT_CODES_HELP}

Examples:
  deno task produce
  deno task produce --count 100 --min 0 --max 2 --wait --timeline run.svg`;

/**
 * Parses the worker's flags and environment.
 *
 * @returns the configuration, or `"help"` when help was asked for.
 * @throws {UsageError} on an unknown flag or a bad value.
 */
export function parseWorkerArgs(
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): WorkerConfig | "help" {
  const values = parse(args, {
    prefetch: { type: "string" },
    concurrency: { type: "string" },
    "time-scale": { type: "string" },
    name: { type: "string" },
    handler: { type: "string" },
    "max-attempts": { type: "string" },
    "retry-delay": { type: "string" },
    "task-timeout": { type: "string" },
    "max-body": { type: "string" },
  });
  if (values === "help") return values;
  const concurrency = integer(values, "concurrency", 1, 1, 1000);
  const prefetch = integer(values, "prefetch", concurrency, 1, 65535);
  if (prefetch < concurrency) {
    throw new UsageError(
      `Invalid --prefetch ${prefetch}: it must be at least --concurrency (${concurrency})`,
    );
  }
  const name = str(values, "name") ?? `${Deno.hostname()}-${Deno.pid}`;
  if (name.trim() === "") throw new UsageError("Invalid --name: it must not be empty");
  return {
    ...common(values, env),
    prefetch,
    concurrency,
    timeScale: number(values, "time-scale", 1, 0, 3600),
    name,
    handler: str(values, "handler"),
    maxAttempts: integer(values, "max-attempts", 5, 1, 1000),
    retryDelayMs: Math.round(number(values, "retry-delay", 1, 0, 86_400) * 1000),
    taskTimeoutMs: Math.round(number(values, "task-timeout", 600, 0, 7 * 86_400) * 1000),
    maxBodyBytes: integer(values, "max-body", 1_048_576, 64, 128 * 1_048_576),
  };
}

/**
 * Parses the producer's flags and environment.
 *
 * @returns the configuration, or `"help"` when help was asked for.
 * @throws {UsageError} on an unknown flag or a bad value.
 */
export function parseProducerArgs(
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): ProducerConfig | "help" {
  const values = parse(args, {
    count: { type: "string" },
    min: { type: "string" },
    max: { type: "string" },
    wait: { type: "boolean" },
    timeout: { type: "string" },
    timeline: { type: "string" },
  });
  if (values === "help") return values;
  const min = integer(values, "min", 1, 0, 86_400);
  const max = integer(values, "max", 5, 0, 86_400);
  if (min > max) {
    throw new UsageError(`Invalid --min ${min} and --max ${max}: --min must not exceed --max`);
  }
  const wait = values.wait === true;
  const timeline = str(values, "timeline");
  if (timeline !== undefined && !wait) {
    throw new UsageError("Invalid --timeline: it needs --wait");
  }
  return {
    ...common(values, env),
    count: integer(values, "count", 10, 0, 10_000_000),
    min,
    max,
    wait,
    timeoutMs: Math.round(number(values, "timeout", 0, 0, 7 * 86_400) * 1000),
    timeline,
  };
}

/** `deno task status` settings. */
export interface StatusConfig extends CommonConfig {
  /** Redraw every second (`--watch`). */
  watch: boolean;
  /** Print one snapshot as JSON (`--json`). */
  json: boolean;
}

/** `deno task demo` settings. */
export interface DemoConfig extends CommonConfig {
  /** Workers to start (`--workers`). */
  workers: number;
  /** Tasks to publish (`--count`). */
  count: number;
  /** Seconds of work per unit of complexity (`--time-scale`). */
  timeScale: number;
  /** Write the timeline as SVG to this file (`--timeline`). */
  timeline: string | undefined;
}

/** The demo's own queue, deleted before and after each run. */
export const DEMO_QUEUE = "tareas_demo";

/**
 * Parses the status command's flags and environment.
 *
 * @throws {UsageError} on an unknown flag or a bad value.
 */
export function parseStatusArgs(
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): StatusConfig | "help" {
  const values = parse(args, { watch: { type: "boolean" }, json: { type: "boolean" } });
  if (values === "help") return values;
  return { ...common(values, env), watch: values.watch === true, json: values.json === true };
}

/**
 * Parses the demo's flags and environment.
 *
 * @throws {UsageError} on an unknown flag or a bad value.
 */
export function parseDemoArgs(
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): DemoConfig | "help" {
  const values = parse(args, {
    workers: { type: "string" },
    count: { type: "string" },
    "time-scale": { type: "string" },
    timeline: { type: "string" },
  });
  if (values === "help") return values;
  const timeScale = number(values, "time-scale", 1, 0, 10);
  if (timeScale === 0) {
    throw new UsageError(`Invalid --time-scale "0": the demo needs tasks that take some time`);
  }
  return {
    ...common({ queue: DEMO_QUEUE, ...values }, env),
    workers: integer(values, "workers", 3, 2, 20),
    count: integer(values, "count", 10, 1, 1000),
    timeScale,
    timeline: str(values, "timeline"),
  };
}

type Values = Record<string, string | boolean | undefined>;
type Options = Record<string, { type: "string" | "boolean"; short?: string }>;

function parse(args: string[], options: Options): Values | "help" {
  const all: Options = {
    ...options,
    queue: { type: "string" },
    heartbeat: { type: "string" },
    help: { type: "boolean", short: "h" },
  };
  // `--count -1` is a negative value, not a flag: hand it to the range check below.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (all[arg.slice(2)]?.type === "string" && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  let values: Values;
  try {
    ({ values } = parseArgs({ args: joined, options: all, strict: true, allowPositionals: false }));
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
    throw new UsageError(`${message.replace(/\.$/, "")}; see --help`, { cause: error });
  }
  return values.help ? "help" : values;
}

function common(values: Values, env: Record<string, string | undefined>): CommonConfig {
  const url = env.AMQP_URL || DEFAULT_URL;
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new UsageError(`Invalid AMQP_URL "${redactUrl(url)}": not a URL`);
  }
  if (protocol !== "amqp:" && protocol !== "amqps:") {
    throw new UsageError(`Invalid AMQP_URL "${redactUrl(url)}": expected amqp:// or amqps://`);
  }
  const queue = str(values, "queue") ?? DEFAULT_QUEUE;
  if (queue === "" || queue.length > 200 || queue.startsWith("amq.")) {
    throw new UsageError(
      `Invalid --queue "${queue}": expected 1 to 200 characters, not starting with "amq."`,
    );
  }
  return { url, queue, heartbeat: integer(values, "heartbeat", 15, 0, 600) };
}

function str(values: Values, flag: string): string | undefined {
  const value = values[flag];
  return typeof value === "string" ? value : undefined;
}

function number(values: Values, flag: string, fallback: number, min: number, max: number) {
  const raw = str(values, flag);
  if (raw === undefined) return fallback;
  const value = raw.trim() === "" ? NaN : Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`Invalid --${flag} "${raw}": expected a number from ${min} to ${max}`);
  }
  return value;
}

function integer(values: Values, flag: string, fallback: number, min: number, max: number) {
  const raw = str(values, flag);
  const value = number(values, flag, fallback, min, max);
  if (!Number.isInteger(value)) {
    throw new UsageError(
      `Invalid --${flag} "${raw}": expected a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

/** `deno task migrate` settings. */
export interface MigrateConfig extends CommonConfig {
  /** Messages moved per confirmed batch (`--batch`). */
  batch: number;
}

/** `deno task migrate --help`. */
export const MIGRATE_HELP = `Usage: deno task migrate [flags]

Turns the queue the original Python scripts declared (a classic queue) into tareas' quorum queue
of the same name, keeping every message with its body and properties. The messages go through a
temporary quorum queue <queue>.migrating, in batches published with confirms and acked at their
source only once confirmed: an interruption or a crash at any point loses nothing, and running the
command again resumes (a crash may leave duplicates, never losses). Stop the workers of the
original scripts first: a classic queue with consumers is refused. A queue that already is
tareas' has nothing to migrate (exit 0).

Flags:
${COMMON_HELP}
  --batch N            messages moved per confirmed batch (default 100)

${ENVIRONMENT_HELP}

${EXIT_CODES_HELP}
  (migrate exits 2 when consumers are attached to the classic queue, or when the queue does not
  exist or is neither classic nor tareas'; 1 when it stopped: run it again to resume)

Examples:
  deno task migrate
  deno task migrate --queue tareas_distribuidas --batch 1000`;

/**
 * Parses the migrate command's flags and environment.
 *
 * @returns the configuration, or `"help"` when help was asked for.
 * @throws {UsageError} on an unknown flag or a bad value.
 */
export function parseMigrateArgs(
  args: string[],
  env: Record<string, string | undefined> = Deno.env.toObject(),
): MigrateConfig | "help" {
  const values = parse(args, { batch: { type: "string" } });
  if (values === "help") return values;
  return { ...common(values, env), batch: integer(values, "batch", 100, 1, 10_000) };
}
