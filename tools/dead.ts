/**
 * `deno task dead`: the dead letters of a queue, for a person: list them with why they died, show
 * one, send them back to the work queue, or purge them. See `lib/operate/dead_letters.ts` for why
 * reading them never loses one.
 * @module
 */
import { onStopSignals, runMain } from "../lib/cli/main.ts";
import { type DeadConfig, ENVIRONMENT_HELP, parseDeadArgs } from "../lib/cli/tools_config.ts";
import { type DeadLetter, openDeadLetters } from "../lib/operate/dead_letters.ts";
import { TareasError, UsageError } from "../lib/core/errors.ts";
import { printable } from "../lib/core/text.ts";
import { DEFAULT_QUEUE } from "../lib/core/topology.ts";

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
  // The first SIGINT or SIGTERM stops taking letters (those in hand are finished); another one,
  // a moment later, exits at once (a letter in hand is then copied twice at worst, never lost).
  const signals = onStopSignals(() => stop.abort(), () => Deno.exit(1));
  try {
    const { signal } = stop;
    switch (action.kind) {
      case "list": {
        // Each letter printed as it is read, and then forgotten: a pass holds one at a time.
        const list = config.json ? new JsonList() : new TextList(`${queue}.dead`);
        const { seen, total } = await letters.list({
          signal,
          json: false,
          onLetter: (letter, total) => list.add(letter, total),
        });
        list.end(seen, total);
        return 0;
      }
      case "show": {
        const found: DeadLetter[] = [];
        await letters.list({
          signal,
          onLetter: (letter) => {
            if (letter.id === action.id) found.push(letter);
          },
        });
        if (found.length === 0) throw notFound(action.id, queue);
        console.log(
          config.json
            ? jsonPrintable(
              `[\n${found.map((letter) => indentJson(details(letter))).join(",\n")}\n]`,
            )
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
    signals.remove();
  }
}

function notFound(id: string, queue: string): TareasError {
  return new TareasError(
    `No dead letter with id ${printable(id)} in ${printable(queue)}.dead: see --list`,
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

/**
 * The JSON text of `--show` for one letter: the summary, the headers and the body. A body that
 * nests deeper than {@linkcode MAX_PRETTY_DEPTH} goes in as its own JSON text (valid JSON: it
 * parsed), as pretty-printing it would recurse as deep.
 */
function details(letter: DeadLetter): string {
  const fields = {
    ...summary(letter),
    headers: JSON.parse(JSON.stringify(letter.headers, jsonSafe)),
    body: letter.json === undefined ? new TextDecoder().decode(letter.body) : letter.json,
  };
  if (letter.json === undefined || shallow(letter.json)) return JSON.stringify(fields, null, 2);
  fields.body = null;
  const text = JSON.stringify(fields, null, 2);
  const cut = text.lastIndexOf('"body": null');
  return `${text.slice(0, cut)}"body": ${rawJson(letter)}${
    text.slice(cut + '"body": null'.length)
  }`;
}

/** Indents a pretty-printed JSON value by two spaces, as an element of a pretty array. */
function indentJson(text: string): string {
  return text.split("\n").map((line) => `  ${line}`).join("\n");
}

/**
 * JSON text made safe for a terminal as the text outputs are: DEL, the C1 controls and the bidi
 * controls written as `\u` escapes (JSON.stringify already escapes C0). Outside strings, valid
 * JSON holds none of these, so the text stays the same JSON.
 */
function jsonPrintable(text: string): string {
  return text.replace(
    /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Deepest JSON value pretty-printed; deeper ones are shown as their own text. */
const MAX_PRETTY_DEPTH = 100;

/** Whether `value` nests at most {@linkcode MAX_PRETTY_DEPTH} deep (walked without recursion). */
function shallow(value: unknown): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [next, depth] = stack.pop()!;
    if (typeof next !== "object" || next === null) continue;
    if (depth > MAX_PRETTY_DEPTH) return false;
    for (const child of Object.values(next)) stack.push([child, depth + 1]);
  }
  return true;
}

/** The body of a letter whose body is JSON, as its own text, whitespace trimmed. */
function rawJson(letter: DeadLetter): string {
  return new TextDecoder().decode(letter.body).trim();
}

/** A JSON value for a person: pretty when shallow, else compact (see `shallow`). */
function prettyJson(value: unknown): string {
  return shallow(value) ? JSON.stringify(value, null, 2) ?? "undefined" : compactJson(value);
}

/**
 * A deep JSON value on one line. V8 writes plain values without recursion; should it not, the
 * reader is told where to look.
 */
function compactJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "undefined";
  } catch {
    return `(nested deeper than ${MAX_PRETTY_DEPTH} levels: see the body)`;
  }
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

/** Width of the id column: a task id is a UUID; a longer id pushes its row along. */
const ID_WIDTH = 36;

/** `--list` as text: a heading at the first letter, then one line per letter as it is read. */
class TextList {
  #queue: string;
  #shown = 0;

  constructor(queue: string) {
    this.#queue = queue;
  }

  add(letter: DeadLetter, total: number): void {
    if (this.#shown++ === 0) {
      console.log(`${plural(total, "dead letter")} in ${printable(this.#queue)}`);
      console.log(
        `${"id".padEnd(ID_WIDTH)}  attempts  ${"dead at".padEnd(24)}  ${
          "size".padStart(9)
        }  reason`,
      );
    }
    const id = cut(printable(letter.id), 40);
    const attempts = letter.attempts === undefined ? "?" : String(letter.attempts);
    const size = `${letter.size} B`;
    console.log(
      `${id.padEnd(ID_WIDTH)}  ${attempts.padStart(8)}  ${(letter.deadAt ?? "?").padEnd(24)}  ` +
        `${size.padStart(9)}  ${cut(printable(letter.reason), 80)}`,
    );
  }

  end(seen: number, total: number): void {
    if (seen === 0) console.log(`No dead letters in ${printable(this.#queue)}`);
    else if (seen < total) console.log(`(${seen} listed: the others were taken meanwhile)`);
  }
}

/** `--list --json`: the array JSON.stringify would print, written one element at a time. */
class JsonList {
  #shown = 0;
  #encoder = new TextEncoder();

  add(letter: DeadLetter): void {
    const element = indentJson(JSON.stringify(summary(letter), null, 2));
    this.#write(`${this.#shown++ === 0 ? "[" : ","}\n${jsonPrintable(element)}`);
  }

  end(): void {
    this.#write(this.#shown === 0 ? "[]\n" : "\n]\n");
  }

  #write(text: string): void {
    const bytes = this.#encoder.encode(text);
    for (let done = 0; done < bytes.length;) done += Deno.stdout.writeSync(bytes.subarray(done));
  }
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
  if (letter.payload !== undefined) lines.push("  payload", indent(prettyJson(letter.payload)));
  lines.push("  body");
  if (letter.json !== undefined) {
    lines.push(indent(shallow(letter.json) ? prettyJson(letter.json) : rawJson(letter)));
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
