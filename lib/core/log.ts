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
  type TextFormatter,
} from "../deps/logtape.ts";
import { UsageError } from "./errors.ts";
import { printable } from "./text.ts";

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
  const formatter = format === "json" ? jsonLinesFormatter : formatTextLog;
  const encoder = new TextEncoder();
  const sink = (record: LogRecord) => {
    // A line redrawn in place (a progress bar) is cleared first and drawn again below the log
    // line, so that the two never share a line of the terminal.
    const held = heldLine;
    held?.clear();
    Deno.stderr.writeSync(encoder.encode(formatter(record)));
    held?.redraw();
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

/**
 * Formats a record as one text log line. Values interpolated into the message (message ids,
 * worker names, reasons: often from untrusted messages and events) go through `printable()`, so
 * a newline or an escape sequence in them cannot forge a log line or drive the terminal; other
 * values are inspected, each line made printable and continuation lines (an error's stack)
 * indented, so no line of a record can pass for a record of its own.
 *
 * @example
 * ```ts
 * Deno.stderr.writeSync(new TextEncoder().encode(formatTextLog(record)));
 * ```
 */
export const formatTextLog: TextFormatter = getTextFormatter({
  timestamp: "time",
  value: formatValue,
});

function formatValue(value: unknown): string {
  if (typeof value === "string") return printable(value);
  return Deno.inspect(value, { colors: false }).split("\n").map(printable).join("\n    ");
}

/** A line a program redraws in place on the terminal, such as a progress bar. */
export interface TerminalLine {
  /** Erases the line, leaving the cursor at its start. */
  clear(): void;
  /** Draws the line again, as it was. */
  redraw(): void;
}

let heldLine: TerminalLine | undefined;

/**
 * Makes log lines clear `line` before they are written and redraw it after, until the returned
 * function is called.
 *
 * @example
 * ```ts
 * const release = holdTerminalLine({ clear: () => write("\r\x1b[2K"), redraw: () => write(bar) });
 * try { await work(); } finally { release(); }
 * ```
 */
export function holdTerminalLine(line: TerminalLine): () => void {
  heldLine = line;
  return () => {
    if (heldLine === line) heldLine = undefined;
  };
}

/** The logger of one part of tareas, e.g. `log("worker")`. */
export function log(name: string): Logger {
  return getLogger(["tareas", name]);
}
