/**
 * `deno task dead`: the dead letters of a queue, for a person: list them with why they died, show
 * one, send them back to the work queue, or purge them. See `lib/dead_letters.ts` for why
 * reading them never loses one.
 * @module
 */
import { runMain } from "../lib/cli.ts";
import { type DeadConfig, ENVIRONMENT_HELP, parseDeadArgs } from "../lib/config.ts";
import { type DeadLetter, openDeadLetters } from "../lib/dead_letters.ts";
import { TareasError, UsageError } from "../lib/errors.ts";
import { printable } from "../lib/text.ts";
import { DEFAULT_QUEUE } from "../lib/topology.ts";

const HELP = `Usage: deno task dead ACTION [flags]

The tasks in <queue>.dead, the dead-letter queue: tasks that failed --max-attempts times, were
malformed, or kept crashing their worker. Reading them never loses one: each is moved through
(copied back with a broker confirm, then the original removed), so the queue keeps its order.

Actions (one):
  --list             one line per dead letter: id, attempts, when, size, reason
  --show ID          everything about the dead letters with this id: reason, headers, payload
  --requeue ID       send the dead letters with this id back to the work queue, attempts reset
  --requeue-all      send every dead letter back to the work queue, attempts reset
  --purge            delete every dead letter (asks first; --yes in scripts)

Flags:
  --queue NAME       work queue (default ${DEFAULT_QUEUE}); its dead letters are in NAME.dead
  --json             with --list or --show, print JSON
  --yes              with --purge, do not ask
  --heartbeat S      AMQP heartbeat in seconds, 0 disables (default 15)
  -h, --help         show this help

An ID is the task id (the message id), or body-<16 hex digits> for a message without one, as
--list shows it. Requeueing publishes each task to the work queue with a broker confirm and only
then removes it from the dead letters: a crash in between leaves a duplicate, never a loss.

${ENVIRONMENT_HELP}

Exit codes:
  0  success
  1  runtime failure (broker unreachable, no dead letter with that id, a publish refused)
  2  usage or configuration error (bad flag, queue missing, credentials refused, --purge
     without a terminal to ask on and without --yes)

Examples:
  deno task dead --list
  deno task dead --show 0b9f6c1e-6a34-4ae6-a0a3-63c3c0d2f1a4
  deno task dead --requeue-all --queue tareas_distribuidas`;

async function dead(config: DeadConfig): Promise<number> {
  const { action, queue } = config;
  if (action.kind === "purge" && !config.yes && !Deno.stdin.isTerminal()) {
    throw new UsageError("Refusing to purge the dead letters without asking: pass --yes");
  }
  await using letters = await openDeadLetters({
    url: config.url,
    queue,
    heartbeat: config.heartbeat,
    name: "tareas dead",
  });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    const { signal } = stop;
    switch (action.kind) {
      case "list": {
        const { letters: all, total } = await letters.list({ signal });
        if (config.json) {
          console.log(JSON.stringify(all.map(summary), null, 2));
        } else {
          console.log(renderList(all, `${queue}.dead`, total));
        }
        return 0;
      }
      case "show": {
        const { letters: all } = await letters.list({ signal });
        const found = all.filter((letter) => letter.id === action.id);
        if (found.length === 0) throw notFound(action.id, queue);
        console.log(
          config.json
            ? JSON.stringify(found.map(details), null, 2)
            : found.map((letter, i) => renderLetter(letter, i + 1, found.length)).join("\n\n"),
        );
        return 0;
      }
      case "requeue": {
        const { requeued } = await letters.requeue(new Set([action.id]), { signal });
        if (requeued === 0) throw notFound(action.id, queue);
        console.log(
          `Requeued ${plural(requeued, "dead letter")} with id ${printable(action.id)} to ${
            printable(queue)
          }, attempts reset`,
        );
        return 0;
      }
      case "requeue-all": {
        const { requeued } = await letters.requeue("all", { signal });
        console.log(
          `Requeued ${plural(requeued, "dead letter")} to ${printable(queue)}, attempts reset`,
        );
        return 0;
      }
      case "purge": {
        const count = await letters.count();
        if (count === 0) {
          console.log(`No dead letters in ${printable(queue)}.dead`);
          return 0;
        }
        if (!config.yes) {
          const answer = prompt(
            `Delete ${plural(count, "dead letter")} from ${printable(queue)}.dead for good? [y/N]`,
          );
          if (!/^y(es)?$/i.test(answer?.trim() ?? "")) {
            console.log("Nothing deleted");
            return 0;
          }
        }
        const purged = await letters.purge();
        console.log(`Deleted ${plural(purged, "dead letter")} from ${printable(queue)}.dead`);
        return 0;
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

function notFound(id: string, queue: string): TareasError {
  return new TareasError(
    `No dead letter with id ${printable(id)} in ${printable(queue)}.dead: see --list`,
    1,
  );
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** The JSON of `--list`: everything but the body. */
function summary(letter: DeadLetter) {
  return {
    id: letter.id,
    reason: letter.reason,
    attempts: letter.attempts ?? null,
    deadAt: letter.deadAt ?? null,
    worker: letter.worker ?? null,
    size: letter.size,
  };
}

/** The JSON of `--show`: the summary, the headers and the body. */
function details(letter: DeadLetter) {
  return {
    ...summary(letter),
    headers: JSON.parse(JSON.stringify(letter.headers, jsonSafe)),
    ...(letter.json === undefined
      ? { body: new TextDecoder().decode(letter.body) }
      : { body: letter.json }),
  };
}

/** JSON.stringify replacer for header values amqplib decodes (Buffers, bigints). */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (
    typeof value === "object" && value !== null && (value as { type?: unknown }).type === "Buffer"
  ) {
    return `<${((value as { data?: unknown[] }).data ?? []).length} bytes>`;
  }
  return value;
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function renderList(letters: DeadLetter[], queue: string, total: number): string {
  if (letters.length === 0) return `No dead letters in ${printable(queue)}`;
  const rows = letters.map((letter) => ({
    id: cut(printable(letter.id), 40),
    attempts: letter.attempts === undefined ? "?" : String(letter.attempts),
    when: letter.deadAt ?? "?",
    size: `${letter.size} B`,
    reason: cut(printable(letter.reason), 80),
  }));
  let idWidth = 2;
  for (const row of rows) idWidth = Math.max(idWidth, row.id.length);
  const lines = [
    `${plural(letters.length, "dead letter")} in ${printable(queue)}` +
    (total > letters.length ? ` (of ${total})` : ""),
    `${"id".padEnd(idWidth)}  attempts  ${"dead at".padEnd(24)}  ${"size".padStart(9)}  reason`,
  ];
  for (const row of rows) {
    lines.push(
      `${row.id.padEnd(idWidth)}  ${row.attempts.padStart(8)}  ${row.when.padEnd(24)}  ` +
        `${row.size.padStart(9)}  ${row.reason}`,
    );
  }
  return lines.join("\n");
}

const MAX_SHOWN_BYTES = 64 * 1024;

function renderLetter(letter: DeadLetter, index: number, of: number): string {
  const lines = [
    `dead letter ${index} of ${of} with id ${printable(letter.id)}`,
    `  reason    ${printable(letter.reason)}`,
    `  attempts  ${letter.attempts ?? "?"}`,
    `  dead at   ${letter.deadAt ?? "?"}`,
    `  worker    ${letter.worker === undefined ? "?" : printable(letter.worker)}`,
    `  size      ${letter.size} bytes`,
    "  headers",
  ];
  const headers = Object.entries(letter.headers);
  if (headers.length === 0) lines.push("    (none)");
  for (const [key, value] of headers) {
    lines.push(
      `    ${printable(key)}: ${printable(cut(JSON.stringify(value, jsonSafe) ?? "", 500))}`,
    );
  }
  if (letter.payload !== undefined) {
    lines.push("  payload", indent(JSON.stringify(letter.payload, null, 2) ?? "undefined"));
  }
  lines.push("  body");
  if (letter.json !== undefined) {
    lines.push(indent(JSON.stringify(letter.json, null, 2) ?? ""));
  } else {
    const shown = letter.body.subarray(0, MAX_SHOWN_BYTES);
    lines.push(indent(new TextDecoder().decode(shown)));
    if (letter.size > shown.byteLength) {
      lines.push(`    … ${letter.size - shown.byteLength} more bytes`);
    }
  }
  return lines.join("\n");
}

/** Indents text by four spaces per line, each line made printable. */
function indent(text: string): string {
  const capped = text.length > MAX_SHOWN_BYTES
    ? `${text.slice(0, MAX_SHOWN_BYTES)}\n… ${text.length - MAX_SHOWN_BYTES} more characters`
    : text;
  return capped.split("\n").map((line) => `    ${printable(line)}`).join("\n");
}

if (import.meta.main) {
  await runMain("dead", {
    parse: () => parseDeadArgs(Deno.args),
    help: HELP,
    run: dead,
    logLevel: "warning",
  });
}
