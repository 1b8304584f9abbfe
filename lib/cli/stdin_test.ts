import assert from "node:assert/strict";
import { nameProblem, parseLine } from "./stdin.ts";

Deno.test("a line is a payload, or a name, a tab and a payload", () => {
  assert.deepEqual(parseLine('{"a":1}'), { payload: { a: 1 }, name: undefined });
  assert.deepEqual(parseLine('resize\t{"a":1}'), { payload: { a: 1 }, name: "resize" });
  assert.deepEqual(parseLine("email\t42"), { payload: 42, name: "email" });
  // JSON with a tab in it stays a payload: a value that goes on after a tab starts with {, [ or
  // whitespace, and a value followed by blanks is that value.
  assert.deepEqual(parseLine('{"a":\t1}'), { payload: { a: 1 }, name: undefined });
  assert.deepEqual(parseLine("[1,\t2]"), { payload: [1, 2], name: undefined });
  assert.deepEqual(parseLine('\t"x"'), { payload: "x", name: undefined });
  assert.deepEqual(parseLine('"x"\t'), { payload: "x", name: undefined });
});

Deno.test("a bad name or a bad payload after a name is a problem naming which", () => {
  assert.match(
    (parseLine('bad name\t{"a":1}') as { problem: string }).problem,
    /^has an invalid task name before its tab \(expected 1 to 200 characters/,
  );
  assert.match(
    (parseLine("resize\t{not json") as { problem: string }).problem,
    /^is not JSON after its task name \(/,
  );
  assert.match((parseLine("{not json") as { problem: string }).problem, /^is not JSON \(/);
});

Deno.test("a name is 1 to 200 characters, no spaces or controls, at most 255 bytes", () => {
  for (const name of ["resize", "images.resize", "a", "x".repeat(200), "é".repeat(127)]) {
    assert.equal(nameProblem(name), undefined, name);
  }
  for (const name of ["", "two words", "tab\there", "nul\0", "{x", "[x", "x".repeat(201)]) {
    assert.match(nameProblem(name) ?? "", /^expected 1 to 200 characters/, JSON.stringify(name));
  }
  assert.match(nameProblem("é".repeat(128)) ?? "", /^256 bytes as UTF-8/);
});
