/**
 * The worker's and the producer's configuration: their flags plus the environment become one
 * typed object per entry point, checked by the same rules as the library's options
 * (`../core/options.ts`). Bad input becomes a {@linkcode UsageError} with a one-line message.
 * @module
 */
import { UsageError } from "../core/errors.ts";
import { MAX_DELAY_MS } from "../core/delays.ts";
import { checkPrefetch, checkWorkerName, numberFlag } from "../core/options.ts";
import { printable } from "../core/text.ts";
import { NAME_RULE, nameProblem } from "./stdin.ts";
import {
  common,
  COMMON_HELP,
  type CommonConfig,
  environment,
  ENVIRONMENT_HELP,
  EXIT_CODES_HELP,
  integer,
  number,
  parse,
  str,
  type Values,
} from "./flags.ts";

export { type CommonConfig, ENVIRONMENT_HELP, EXIT_CODES_HELP } from "./flags.ts";

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
  /** Port of the Prometheus endpoint `/metrics` (`--metrics-port`); undefined for none. */
  metricsPort: number | undefined;
  /** Address the metrics endpoint listens on (`--metrics-host`). */
  metricsHost: string;
  /** Port of the health checks `/livez` and `/readyz` (`--health-port`); undefined for none. */
  healthPort: number | undefined;
  /** Address the health checks listen on (`--health-host`). */
  healthHost: string;
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
  /** The tasks' name, which picks their handler; undefined for `"default"` (`--name`). */
  name: string | undefined;
  /** How long each task waits before it may run, in ms (`--delay`, seconds). */
  delayMs: number;
  /** With `wait`, write each task's result as a JSON line to this file (`--results`). */
  results: string | undefined;
}

/** The longest `--delay`, in seconds: the delays' ladder holds 38.8 days. */
const MAX_DELAY_S = MAX_DELAY_MS / 1000;

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
  --handler PATH       module whose default export runs a task: a function (the handler of
                       tasks without a name), or an object of functions by task name, as in
                       export default { resize, email } (default: sleep complexity)
  --max-attempts N     attempts before a failing task is dead-lettered (default 5)
  --retry-delay S      delay before the first retry, doubling each time (default 1)
  --task-timeout S     abort a handler after S seconds, 0 for never (default 600)
  --max-body BYTES     dead-letter bodies larger than this (default 1048576)
  --metrics-port N     serve Prometheus metrics on http://HOST:N/metrics (default: none)
  --metrics-host HOST  address the metrics listen on; 0.0.0.0 for every interface (default
                       127.0.0.1)
  --health-port N      serve health checks on http://HOST:N: /livez (the process answers) and
                       /readyz (consuming; not while reconnecting or after SIGTERM) (default: none)
  --health-host HOST   address the health checks listen on (default 127.0.0.1)

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
  --name NAME          the tasks' name, which picks their handler on the worker (default
                       "default"): ${NAME_RULE}
  --delay S            each task waits S seconds (decimals allowed, up to ${MAX_DELAY_S}, about 38
                       days) in the broker before a worker may run it (default 0)
  --stdin              instead, read JSON Lines from standard input: one task per line, the
                       line's value being its payload; a line NAME<TAB>JSON names its task
                       (the name before the line's first tab, then its payload); a line that is
                       not JSON, or whose name is not one, stops the run (exit 2) after
                       confirming the tasks before it
  --wait               stay until every task has completed or been dead-lettered, showing
                       progress (and the progress the running tasks report, saying when
                       nothing consumes the queue), then print a summary and a timeline; its
                       tasks carry x-tareas-awaited, so each one's last event leaves its worker
                       before its ack
  --timeout S          with --wait, give up after S seconds, 0 for never (default 0)
  --timeline FILE.svg  with --wait, also write the timeline as an SVG picture
  --results FILE       with --wait, write one JSON line per task as it ends:
                       {"id","status":"completed","result"} (what its handler returned) or
                       {"id","status":"dead","reason"}; the run ends once every line is written

${ENVIRONMENT_HELP}

${EXIT_CODES_HELP}
  3  with --wait: every task finished, but some were dead-lettered (listed with their reasons)

Examples:
  deno task produce
  deno task produce --count 100 --min 0 --max 2 --wait --timeline run.svg
  deno task produce --count 3 --delay 90 --name report
  printf '{"image":"a.png"}\\n{"image":"b.png"}\\n' | deno task produce --stdin
  printf 'resize\\t{"image":"a.png"}\\nemail\\t{"to":"ana"}\\n' |
    deno task produce --stdin --wait --results results.jsonl`;

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
    "metrics-port": { type: "string" },
    "metrics-host": { type: "string" },
    "health-port": { type: "string" },
    "health-host": { type: "string" },
  });
  if (values === "help") return values;
  const metricsPort = port(values, "metrics-port");
  const healthPort = port(values, "health-port");
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === healthPort) {
    throw new UsageError(
      `Invalid --health-port ${healthPort}: --metrics-port uses it; give each its own port`,
    );
  }
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
    metricsPort,
    metricsHost: host(values, "metrics-host"),
    healthPort,
    healthHost: host(values, "health-host"),
  };
}

/** A port flag's value (0 for any free port), or undefined when it is absent. */
function port(values: Values, flag: string): number | undefined {
  return str(values, flag) === undefined ? undefined : integer(values, flag, 0, 0, 65_535);
}

/** A listening address flag's value: a host name or an IP address, 127.0.0.1 by default. */
function host(values: Values, flag: string): string {
  const value = str(values, flag);
  if (value === undefined) return "127.0.0.1";
  if (!/^[\w.:-]{1,253}$/.test(value)) {
    throw new UsageError(
      `Invalid --${flag} "${printable(value)}": expected a host name or an IP address, such as ` +
        "127.0.0.1 or 0.0.0.0",
    );
  }
  return value;
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
    name: { type: "string" },
    delay: { type: "string" },
    results: { type: "string" },
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
  for (const flag of ["timeline", "results"]) {
    if (values[flag] !== undefined && !wait) {
      throw new UsageError(`Invalid --${flag}: it needs --wait`);
    }
  }
  const name = str(values, "name");
  const problem = name === undefined ? undefined : nameProblem(name);
  if (problem !== undefined) {
    throw new UsageError(`Invalid --name "${printable(name!)}": ${problem}`);
  }
  const delay = number(values, "delay", 0, 0, MAX_DELAY_S);
  return {
    ...common(values, env),
    count: integer(values, "count", 10, 0, 10_000_000),
    min,
    max,
    wait,
    timeoutMs: Math.round(number(values, "timeout", 0, 0, 7 * 86_400) * 1000),
    timeline: str(values, "timeline"),
    stdin,
    name,
    delayMs: Math.ceil(delay * 1000),
    results: str(values, "results"),
  };
}
