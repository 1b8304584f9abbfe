/**
 * `deno task verify`'s flags: parsed into one typed object, bad input into a one-line
 * {@linkcode UsageError} (exit 2).
 * @module
 */
import { UsageError } from "../../core/errors.ts";
import { printable } from "../../core/text.ts";
import {
  common,
  type CommonConfig,
  environment,
  ENVIRONMENT_HELP,
  integer,
  parse,
  str,
} from "../../cli/flags.ts";
import type { BrokerMode } from "./broker.ts";
import { MAX_WORK_MS } from "./work.ts";

/** `deno task verify` settings. */
export interface VerifyConfig extends CommonConfig {
  /** Tasks to publish (`--tasks`). */
  tasks: number;
  /** Workers running at once (`--workers`). */
  workers: number;
  /** SIGKILLs of a busy worker (`--kills`). */
  kills: number;
  /** Simulated work of each task, in ms (`--duration-ms MIN-MAX`). */
  durationMs: { min: number; max: number };
  /** `--prefetch` of each worker. */
  prefetch: number;
  /** `--concurrency` of each worker. */
  concurrency: number;
  /** The broker at `AMQP_URL`, or a private node (`--broker-restart`) or cluster (`--cluster`). */
  mode: BrokerMode;
  /** Print the report as JSON (`--json`). */
  json: boolean;
}

/** The start of verify's queue names; each run adds its own suffix. */
export const VERIFY_QUEUE = "tareas_verify";

/** `deno task verify --help`. */
export const VERIFY_HELP = `Usage: deno task verify [flags]

Proves on your broker that no task is lost when the worker running it dies: starts --workers
workers (the real worker program) on a fresh queue, publishes --tasks tasks of simulated work,
SIGKILLs a busy worker --kills times during the run (starting a new one each time), and checks
every completion against what it published. Prints a report: published and confirmed, completed,
lost (must be 0), tasks run more than once (each explained, or not), redelivery latency after a
kill, throughput, broker and tareas versions. Deletes its queue, dead-letter queue, reply queue
and events exchange, and stops its workers, whatever happens (Ctrl-C included).

Flags:
  --tasks N            tasks to publish (default 1000)
  --workers N          workers running at once (default 4)
  --kills N            SIGKILLs of a busy worker, spread over the run (default 20)
  --duration-ms MIN-MAX  simulated work of each task in ms, or one number (default 10-100)
  --prefetch N         --prefetch of each worker (default: --concurrency)
  --concurrency N      --concurrency of each worker (default 1)
  --broker-restart     run on a private RabbitMQ node started here (needs rabbitmq-server) and
                       kill -9 it once mid-run, then restart it
  --cluster            run on a private 3-node RabbitMQ cluster started here (needs
                       rabbitmq-server) and kill -9 the node leading the queue once mid-run, then
                       restart it
  --json               print the report as JSON on stdout (progress still goes to stderr)
  --queue NAME         queue for the run, which must not exist (default tareas_verify_<random>)
  --heartbeat S        AMQP heartbeat in seconds, 0 disables (default 15)
  -h, --help           show this help

${ENVIRONMENT_HELP}

Exit codes:
  0  nothing lost, every task completed, every task run twice explained by a kill
  1  something lost or unexplained (the report names the tasks), or the run could not finish
     (broker unreachable, workers that do not start, stopped by Ctrl-C)
  2  bad flag or value, the queue exists, or --broker-restart or --cluster without
     rabbitmq-server

Examples:
  deno task verify
  deno task verify --tasks 200 --kills 10 --json
  deno task verify --workers 8 --concurrency 4 --prefetch 8 --duration-ms 50-500
  deno task verify --broker-restart
  deno task verify --cluster --tasks 500`;

/**
 * Parses `deno task verify`'s flags and environment.
 *
 * @throws {UsageError} on an unknown flag or a bad value.
 * @example
 * ```ts
 * parseVerifyArgs(["--tasks", "200", "--kills", "5"]);
 * ```
 */
export function parseVerifyArgs(
  args: string[],
  env: Record<string, string | undefined> = environment(),
): VerifyConfig | "help" {
  const values = parse(args, {
    tasks: { type: "string" },
    workers: { type: "string" },
    kills: { type: "string" },
    "duration-ms": { type: "string" },
    prefetch: { type: "string" },
    concurrency: { type: "string" },
    "broker-restart": { type: "boolean" },
    cluster: { type: "boolean" },
    json: { type: "boolean" },
  });
  if (values === "help") return values;
  const queue = str(values, "queue") ?? `${VERIFY_QUEUE}_${crypto.randomUUID().slice(0, 8)}`;
  const concurrency = integer(values, "concurrency", 1, 1, 100);
  return {
    ...common({ ...values, queue }, env),
    tasks: integer(values, "tasks", 1000, 1, 100_000),
    workers: integer(values, "workers", 4, 1, 50),
    kills: integer(values, "kills", 20, 0, 10_000),
    durationMs: durationRange(str(values, "duration-ms")),
    prefetch: integer(values, "prefetch", concurrency, concurrency, 1000),
    concurrency,
    mode: brokerMode(values["broker-restart"] === true, values.cluster === true),
    json: values.json === true,
  };
}

function brokerMode(restart: boolean, cluster: boolean): BrokerMode {
  if (restart && cluster) {
    throw new UsageError("Choose --broker-restart or --cluster, not both; see --help");
  }
  return restart ? "restart" : cluster ? "cluster" : "given";
}

/** `--duration-ms`: `MIN-MAX` or one number, whole ms from 0 to {@linkcode MAX_WORK_MS}. */
function durationRange(raw: string | undefined): { min: number; max: number } {
  if (raw === undefined) return { min: 10, max: 100 };
  const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(raw);
  const min = Number(match?.[1]);
  const max = match?.[2] === undefined ? min : Number(match[2]);
  if (match === null || min > max || max > MAX_WORK_MS) {
    throw new UsageError(
      `Invalid --duration-ms "${
        printable(raw.slice(0, 40))
      }": expected MIN-MAX or one number, whole ms ` +
        `from 0 to ${MAX_WORK_MS}, MIN not above MAX`,
    );
  }
  return { min, max };
}
