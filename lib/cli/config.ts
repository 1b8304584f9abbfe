/**
 * Configuration, read in one place: command-line flags plus environment become one typed object
 * per entry point. Bad input becomes a {@linkcode UsageError} with a one-line message.
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "../core/errors.ts";
import { checkPrefetch, checkQueue, checkWorkerName, numberFlag } from "../core/options.ts";
import { DEFAULT_QUEUE } from "../core/topology.ts";
import { printable } from "../core/text.ts";
import { DEFAULT_URL, parseBrokerUrls } from "../core/url.ts";

/** Settings both entry points share. */
export interface CommonConfig {
  /**
   * Broker URL, or a comma-separated list of a cluster's nodes (`AMQP_URL`). Contains the
   * password: print it only through `redactUrl`.
   */
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
  /** Worker name in events and logs (`--name`); undefined for `<hostname>-<pid>`. */
  name: string | undefined;
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
  /** Read payloads from standard input, one JSON value per line (`--stdin`). */
  stdin: boolean;
}

/** Environment variables read by every entry point. */
export const ENVIRONMENT_HELP = `Environment:
  AMQP_URL     broker URL (default ${DEFAULT_URL}), or a cluster's nodes' URLs separated by
               commas; the password is never printed
  LOG_LEVEL    trace, debug, info, warning, error (default info)
  LOG_FORMAT   text or json (default text); logs go to stderr`;

/** Exit codes of every entry point. */
export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  runtime failure (broker unreachable after retries, task refused, --timeout reached, stopped
     by a signal before the end)
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
  --stdin              instead, read JSON Lines from standard input: one task per line, the
                       line's value being its payload; a line that is not JSON stops the run
                       (exit 2) after confirming the tasks before it
  --wait               stay until every task has completed or been dead-lettered, showing
                       progress (and saying when nothing consumes the queue), then print
                       a summary and a timeline; its tasks carry x-tareas-awaited, so each
                       one's last event leaves its worker before its ack
  --timeout S          with --wait, give up after S seconds, 0 for never (default 0)
  --timeline FILE.svg  with --wait, also write the timeline as an SVG picture

${ENVIRONMENT_HELP}

${EXIT_CODES_HELP}
  3  with --wait: every task finished, but some were dead-lettered (listed with their reasons)

Examples:
  deno task produce
  deno task produce --count 100 --min 0 --max 2 --wait --timeline run.svg
  printf '{"image":"a.png"}\\n{"image":"b.png"}\\n' | deno task produce --stdin`;

/**
 * Parses the worker's flags and environment.
 *
 * @returns the configuration, or `"help"` when help was asked for.
 * @throws {UsageError} on an unknown flag or a bad value.
 */
export function parseWorkerArgs(
  args: string[],
  env: Record<string, string | undefined> = environment(),
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
  const concurrency = numberFlag("concurrency", str(values, "concurrency"));
  const prefetch = str(values, "prefetch") === undefined
    ? concurrency
    : numberFlag("prefetch", str(values, "prefetch"));
  checkPrefetch(prefetch, concurrency, true);
  const name = str(values, "name");
  if (name !== undefined) checkWorkerName(name, true);
  return {
    ...common(values, env),
    prefetch,
    concurrency,
    timeScale: numberFlag("timeScale", str(values, "time-scale")),
    name,
    handler: str(values, "handler"),
    maxAttempts: numberFlag("maxAttempts", str(values, "max-attempts")),
    retryDelayMs: numberFlag("retryDelay", str(values, "retry-delay")),
    taskTimeoutMs: numberFlag("taskTimeout", str(values, "task-timeout")),
    maxBodyBytes: numberFlag("maxBody", str(values, "max-body")),
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
  env: Record<string, string | undefined> = environment(),
): ProducerConfig | "help" {
  const values = parse(args, {
    count: { type: "string" },
    min: { type: "string" },
    max: { type: "string" },
    wait: { type: "boolean" },
    timeout: { type: "string" },
    timeline: { type: "string" },
    stdin: { type: "boolean" },
  });
  if (values === "help") return values;
  const stdin = values.stdin === true;
  for (const flag of ["count", "min", "max"]) {
    if (stdin && values[flag] !== undefined) {
      throw new UsageError(`Invalid --${flag} with --stdin: the tasks come from standard input`);
    }
  }
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
    stdin,
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
  /** Also serve the live dashboard (`--dashboard`). */
  dashboard: boolean;
  /** Run the story on a 3-node cluster of private nodes, killing the leader's node too (`--cluster`). */
  cluster: boolean;
}

/** The start of the demo's queue name; each run adds its own suffix. */
export const DEMO_QUEUE = "tareas_demo";

/** What `deno task dead` does: one action per run. */
export type DeadAction =
  | { kind: "list" }
  | { kind: "show"; id: string }
  | { kind: "requeue"; id: string }
  | { kind: "requeue-all" }
  | { kind: "purge" };

/** `deno task dead` settings. */
export interface DeadConfig extends CommonConfig {
  /** The one action asked for. */
  action: DeadAction;
  /** Print JSON (`--json`, with `--list` or `--show`). */
  json: boolean;
  /** Purge without asking (`--yes`). */
  yes: boolean;
}

/** `deno task dashboard` settings. */
export interface DashboardConfig extends CommonConfig {
  /** Address to listen on (`--host`). */
  host: string;
  /** Port to listen on, 0 for any free one (`--port`). */
  port: number;
  /** Token for the actions (`--token`), or undefined for a random one. */
  token: string | undefined;
}

/**
 * Parses `deno task dead`'s flags and environment.
 *
 * @throws {UsageError} on an unknown flag, a bad value, or not exactly one action.
 */
export function parseDeadArgs(
  args: string[],
  env: Record<string, string | undefined> = environment(),
): DeadConfig | "help" {
  const values = parse(args, {
    list: { type: "boolean" },
    show: { type: "string" },
    requeue: { type: "string" },
    "requeue-all": { type: "boolean" },
    purge: { type: "boolean" },
    json: { type: "boolean" },
    yes: { type: "boolean" },
  });
  if (values === "help") return values;
  const actions: DeadAction[] = [];
  const show = str(values, "show");
  const requeue = str(values, "requeue");
  if (values.list) actions.push({ kind: "list" });
  if (show !== undefined) actions.push({ kind: "show", id: show });
  if (requeue !== undefined) actions.push({ kind: "requeue", id: requeue });
  if (values["requeue-all"]) actions.push({ kind: "requeue-all" });
  if (values.purge) actions.push({ kind: "purge" });
  if (actions.length !== 1) {
    throw new UsageError(
      "Expected one action: --list, --show ID, --requeue ID, --requeue-all or --purge; see --help",
    );
  }
  return {
    ...common(values, env),
    action: actions[0]!,
    json: values.json === true,
    yes: values.yes === true,
  };
}

/**
 * Parses `deno task dashboard`'s flags and environment.
 *
 * @throws {UsageError} on an unknown flag or a bad value.
 */
export function parseDashboardArgs(
  args: string[],
  env: Record<string, string | undefined> = environment(),
): DashboardConfig | "help" {
  const values = parse(args, {
    port: { type: "string" },
    host: { type: "string" },
    token: { type: "string" },
  });
  if (values === "help") return values;
  const token = str(values, "token");
  if (token !== undefined && (token.length < 8 || !/^[\x21-\x7e]+$/.test(token))) {
    throw new UsageError("Invalid --token: expected at least 8 printable characters, no spaces");
  }
  return {
    ...common(values, env),
    host: str(values, "host") ?? "127.0.0.1",
    port: integer(values, "port", 8080, 0, 65535),
    token,
  };
}

/**
 * Parses the status command's flags and environment.
 *
 * @throws {UsageError} on an unknown flag or a bad value.
 */
export function parseStatusArgs(
  args: string[],
  env: Record<string, string | undefined> = environment(),
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
  env: Record<string, string | undefined> = environment(),
): DemoConfig | "help" {
  const values = parse(args, {
    workers: { type: "string" },
    count: { type: "string" },
    "time-scale": { type: "string" },
    timeline: { type: "string" },
    dashboard: { type: "boolean" },
    cluster: { type: "boolean" },
  });
  if (values === "help") return values;
  const timeScale = number(values, "time-scale", 1, 0, 10);
  if (timeScale === 0) {
    throw new UsageError(`Invalid --time-scale "0": the demo needs tasks that take some time`);
  }
  // Each run its own queue, so that two people's demos on one broker never meet.
  const queue = `${DEMO_QUEUE}_${crypto.randomUUID().slice(0, 8)}`;
  return {
    ...common({ queue, ...values }, env),
    workers: integer(values, "workers", 3, 2, 20),
    count: integer(values, "count", 10, 1, 1000),
    timeScale,
    dashboard: values.dashboard === true,
    cluster: values.cluster === true,
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
    // `-count 3` would read as the short flags -c -o -u…: name what was typed instead.
    const single = /^-([a-z][a-z-]+)(=.*)?$/.exec(arg);
    if (single) {
      const hint = single[1]! in all ? `, did you mean '--${single[1]}'?` : "";
      throw new UsageError(
        `Unknown option '${printable(arg)}': long options take two dashes${hint}; see --help`,
      );
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
  parseBrokerUrls(url, "AMQP_URL");
  const queue = checkQueue(str(values, "queue"), true);
  return { url, queue, heartbeat: numberFlag("heartbeat", str(values, "heartbeat")) };
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
  env: Record<string, string | undefined> = environment(),
): MigrateConfig | "help" {
  const values = parse(args, { batch: { type: "string" } });
  if (values === "help") return values;
  return { ...common(values, env), batch: integer(values, "batch", 100, 1, 10_000) };
}

/**
 * The environment variables configuration reads, and only those: each entry point runs with
 * `--allow-env` scoped to them.
 */
function environment(): Record<string, string | undefined> {
  return { AMQP_URL: Deno.env.get("AMQP_URL") };
}
