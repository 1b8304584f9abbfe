/**
 * Logging for every entry point, through LogTape: readable lines on a terminal, JSON lines with
 * `LOG_FORMAT=json`, level from `LOG_LEVEL`. Logs go to stderr; stdout is for program output.
 * @module
 */
import {
  configure,
  getLogger,
  getTextFormatter,
  jsonLinesFormatter,
  type Logger,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";
import { UsageError } from "./errors.ts";

const LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warning", "error", "fatal"];

/** Options of {@linkcode setupLogging}. */
export interface LoggingOptions {
  /** Minimum level. @default {Deno.env LOG_LEVEL, else "info"} */
  level?: string | undefined;
  /** `"text"` or `"json"`. @default {Deno.env LOG_FORMAT, else "text"} */
  format?: string | undefined;
}

/**
 * Configures LogTape once for the process.
 *
 * @throws {UsageError} on an unknown level or format.
 */
export async function setupLogging(options: LoggingOptions = {}): Promise<void> {
  const level = (options.level ?? Deno.env.get("LOG_LEVEL") ?? "info").toLowerCase();
  const format = (options.format ?? Deno.env.get("LOG_FORMAT") ?? "text").toLowerCase();
  const lowest = level === "warn" ? "warning" : level;
  if (!LEVELS.includes(lowest as LogLevel)) {
    throw new UsageError(`Invalid LOG_LEVEL "${level}": expected one of ${LEVELS.join(", ")}`);
  }
  if (format !== "text" && format !== "json") {
    throw new UsageError(`Invalid LOG_FORMAT "${format}": expected text or json`);
  }
  const formatter = format === "json" ? jsonLinesFormatter : getTextFormatter({
    timestamp: "time",
    value: (v: unknown) => typeof v === "string" ? v : Deno.inspect(v, { colors: false }),
  });
  const encoder = new TextEncoder();
  const sink = (record: LogRecord) => {
    Deno.stderr.writeSync(encoder.encode(formatter(record)));
  };
  await configure({
    reset: true,
    sinks: { stderr: sink },
    loggers: [
      { category: "tareas", lowestLevel: lowest as LogLevel, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** The logger of one part of tareas, e.g. `log("worker")`. */
export function log(name: string): Logger {
  return getLogger(["tareas", name]);
}
