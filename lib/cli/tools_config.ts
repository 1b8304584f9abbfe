/**
 * The configuration of the other commands (status, dashboard, dead, demo, migrate): their flags
 * plus the environment become one typed object each. Bad input becomes a {@linkcode UsageError}
 * with a one-line message.
 * @module
 */
import { UsageError } from "../core/errors.ts";
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
} from "./flags.ts";

export { ENVIRONMENT_HELP, EXIT_CODES_HELP } from "./flags.ts";

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
