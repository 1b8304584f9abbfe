/**
 * What every command line shares: the common flags and settings (`--queue`, `--heartbeat`,
 * `AMQP_URL`), the help texts of the environment and exit codes, and the flag parsing that turns
 * bad input into a one-line {@linkcode UsageError}.
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "../core/errors.ts";
import { checkQueue, numberFlag } from "../core/options.ts";
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

/** The flags every command has. */
export const COMMON_HELP = `  --queue NAME         work queue (default ${DEFAULT_QUEUE})
  --heartbeat S        AMQP heartbeat in seconds, 0 disables (default 15)
  -h, --help           show this help`;

/** Parsed flags. */
export type Values = Record<string, string | boolean | undefined>;
/** The flags a command takes, for `node:util` parseArgs. */
export type Options = Record<string, { type: "string" | "boolean"; short?: string }>;

/** Parses `args` against `options` plus the common flags; `"help"` when help is asked for. */
export function parse(args: string[], options: Options): Values | "help" {
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

/** The settings every command shares, from its flags and `AMQP_URL`. */
export function common(values: Values, env: Record<string, string | undefined>): CommonConfig {
  const url = env.AMQP_URL || DEFAULT_URL;
  parseBrokerUrls(url, "AMQP_URL");
  const queue = checkQueue(str(values, "queue"), true);
  return { url, queue, heartbeat: numberFlag("heartbeat", str(values, "heartbeat")) };
}

/** A string flag's value. */
export function str(values: Values, flag: string): string | undefined {
  const value = values[flag];
  return typeof value === "string" ? value : undefined;
}

/** A number flag's value, or `fallback`. */
export function number(values: Values, flag: string, fallback: number, min: number, max: number) {
  const raw = str(values, flag);
  if (raw === undefined) return fallback;
  const value = raw.trim() === "" ? NaN : Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`Invalid --${flag} "${raw}": expected a number from ${min} to ${max}`);
  }
  return value;
}

/** A whole-number flag's value, or `fallback`. */
export function integer(values: Values, flag: string, fallback: number, min: number, max: number) {
  const raw = str(values, flag);
  const value = number(values, flag, fallback, min, max);
  if (!Number.isInteger(value)) {
    throw new UsageError(
      `Invalid --${flag} "${raw}": expected a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

/**
 * The environment variables configuration reads, and only those: each entry point runs with
 * `--allow-env` scoped to them.
 */
export function environment(): Record<string, string | undefined> {
  return { AMQP_URL: Deno.env.get("AMQP_URL") };
}
