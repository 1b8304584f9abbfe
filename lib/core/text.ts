/**
 * Text from messages and events made safe to show on a terminal or in a log line: control
 * characters (a newline forging a log line, an ESC sequence repainting the screen) and bidi
 * overrides become visible escapes. Every renderer of untrusted text goes through here.
 * @module
 */

// C0 controls, DEL, C1 controls, and the bidi embedding, override and isolate characters.
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Returns `text` with every control character and bidi override replaced by a visible escape
 * (`\n`, `\x1b`, `\u202e`), so it prints on one line and cannot move the cursor.
 *
 * @example
 * ```ts
 * printable("worker\n2026 INFO forged"); // "worker\\n2026 INFO forged"
 * ```
 */
export function printable(text: string): string {
  return text.replace(UNSAFE, escape);
}

function escape(char: string): string {
  if (char === "\n") return "\\n";
  if (char === "\r") return "\\r";
  if (char === "\t") return "\\t";
  const code = char.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}
