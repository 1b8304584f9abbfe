import assert from "node:assert/strict";
import { printable } from "./text.ts";

Deno.test("control characters and bidi overrides become visible escapes", () => {
  assert.equal(printable("a\nb\r\tc"), "a\\nb\\r\\tc");
  assert.equal(printable("\x1b[2J\x07"), "\\x1b[2J\\x07");
  assert.equal(printable("\x7f\x9b"), "\\x7f\\x9b");
  assert.equal(printable("abc\u202egpj.exe"), "abc\\u202egpj.exe");
  assert.equal(printable("ünïcödé ✓ tâche"), "ünïcödé ✓ tâche");
});
