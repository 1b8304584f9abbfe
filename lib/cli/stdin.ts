/**
 * What `produce --stdin` reads: standard input split into lines, decoded as UTF-8, and each line
 * parsed into a task's payload and, when the line says it, its name.
 *
 * A line is `JSON` (the task gets `--name`, or `"default"`), or `NAME<TAB>JSON`: a task name, a tab,
 * then the payload. A name is 1 to 200 characters (at most 255 bytes as UTF-8: the AMQP `type`
 * property holds no more) without whitespace or control characters, not starting with `{` or
 * `[`. That keeps a plain JSON line plain: a JSON value whose text goes on after a tab starts
 * with `{`, `[` or whitespace (nothing else may follow a tab), and a value followed by a blank
 * tail is read as that value.
 * @module
 */
import { printable } from "../core/text.ts";

/** Longest task name, in characters (the library's limit). */
export const MAX_NAME_LENGTH = 200;

/** Longest task name, in bytes as UTF-8: the AMQP `type` property is a short string. */
export const MAX_NAME_BYTES = 255;

/**
 * Deepest nesting of arrays and objects a line may have. `JSON.parse` takes any depth, but
 * `JSON.stringify` encoding the task recursed and overflowed V8's stack somewhere between 5,000 and
 * 8,000 levels (a line nested 100,000 deep ended in a stack trace). Other parsers stop sooner:
 * Python's `json` at about 1,000 levels, serde_json at 128.
 */
export const MAX_DEPTH = 1_000;

/** The rule a task name of the command line follows, in words, for messages and help. */
export const NAME_RULE = `1 to ${MAX_NAME_LENGTH} characters without spaces, not starting ` +
  "with { or [";

/** Whitespace, C0 and C1 controls, DEL, and the line and paragraph separators. */
// deno-lint-ignore no-control-regex
const NOT_IN_NAME = /[\s\x00-\x1f\x7f-\x9f]/;

const encoder = new TextEncoder();

/**
 * What is wrong with a task name given on the command line (`--name`, or before a tab on
 * `--stdin`), in a few words; undefined when it is a name.
 */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || NOT_IN_NAME.test(name)) {
    return `expected ${NAME_RULE}`;
  }
  if (name.startsWith("{") || name.startsWith("[")) return `expected ${NAME_RULE}`;
  // Most names are ASCII: their length is their size, no encoding needed.
  if (name.length * 3 > MAX_NAME_BYTES) {
    const bytes = encoder.encode(name).length;
    if (bytes > MAX_NAME_BYTES) {
      return `${bytes} bytes as UTF-8, and the AMQP type property holds at most ${MAX_NAME_BYTES}`;
    }
  }
  return undefined;
}

/** One line of standard input as a task: its payload, and its name when the line gives one. */
export type ParsedLine =
  | { payload: unknown; name: string | undefined }
  | { problem: string };

/**
 * Parses one non-blank line of `--stdin` (see the module doc); `problem` says what is wrong with
 * it, to follow "Line N of standard input".
 */
export function parseLine(line: string): ParsedLine {
  let name: string | undefined;
  let json = line;
  const tab = line.indexOf("\t");
  if (tab > 0 && !/^[\s{[]/.test(line)) {
    const rest = line.slice(tab + 1);
    if (rest.trim() !== "") {
      name = line.slice(0, tab);
      json = rest;
      const problem = nameProblem(name);
      if (problem !== undefined) {
        return { problem: `has an invalid task name before its tab (${problem})` };
      }
    }
  }
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch (error) {
    // The message quotes the line: escaped, as it may hold anything.
    const detail = printable((error as Error).message);
    return {
      problem: `is not JSON${name === undefined ? "" : " after its task name"} (${detail})`,
    };
  }
  if (nestsDeeper(json, MAX_DEPTH)) return { problem: `nests deeper than ${MAX_DEPTH} levels` };
  return { payload, name };
}

/**
 * Whether a JSON text (valid) nests arrays and objects deeper than `limit`. A text of at most
 * twice the limit cannot, and is not scanned; strings are skipped with `indexOf`.
 */
export function nestsDeeper(json: string, limit: number): boolean {
  if (json.length <= 2 * limit) return false;
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const char = json.charCodeAt(i);
    if (char === 0x22) { // '"': on to the quote that ends the string, one not escaped.
      for (;;) {
        i = json.indexOf('"', i + 1);
        let slashes = 0;
        while (json.charCodeAt(i - 1 - slashes) === 0x5c) slashes++;
        if (slashes % 2 === 0) break;
      }
    } else if (char === 0x5b || char === 0x7b) { // "[" or "{"
      if (++depth > limit) return true;
    } else if (char === 0x5d || char === 0x7d) { // "]" or "}"
      depth--;
    }
  }
  return false;
}

/** Decodes a line, refusing bytes that are not UTF-8 rather than changing them into U+FFFD. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The lines of a byte stream (without their "\n"), decoded as UTF-8; `undefined` for a line that
 * is not. Linear in the length of a line: the chunks of a long line are kept in a list and joined
 * once (appending each chunk to the text so far and splitting it again made a 40 MB line take 13
 * to 18 s; 0.3 s now).
 */
export async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string | undefined> {
  let pieces: Uint8Array[] = []; // The current line's bytes so far, from earlier chunks.
  for await (const chunk of stream) {
    const first = chunk.indexOf(0x0a);
    if (first === -1) {
      pieces.push(chunk);
      continue;
    }
    yield decode(join(pieces, chunk.subarray(0, first)));
    pieces = [];
    const last = chunk.lastIndexOf(0x0a);
    if (last > first) {
      // The whole lines of a chunk are decoded at once (a decoding per line cost 1.7 µs a line
      // where this costs 1 µs); when they are not all UTF-8, line by line, to find which is not.
      const text = decode(chunk.subarray(first + 1, last));
      if (text !== undefined) {
        yield* text.split("\n");
      } else {
        for (let start = first + 1, end = 0; start <= last; start = end + 1) {
          end = chunk.indexOf(0x0a, start);
          yield decode(chunk.subarray(start, end));
        }
      }
    }
    if (last + 1 < chunk.length) pieces.push(chunk.subarray(last + 1));
  }
  if (pieces.length > 0) yield decode(join(pieces, new Uint8Array()));
}

/** The text of UTF-8 bytes, or `undefined` when they are not UTF-8. */
function decode(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** `pieces` then `last`, in one array (`last` itself when there are no pieces). */
function join(pieces: Uint8Array[], last: Uint8Array): Uint8Array {
  if (pieces.length === 0) return last;
  const all = new Uint8Array(pieces.reduce((sum, piece) => sum + piece.length, last.length));
  let at = 0;
  for (const piece of [...pieces, last]) {
    all.set(piece, at);
    at += piece.length;
  }
  return all;
}
