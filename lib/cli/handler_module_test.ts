import assert from "node:assert/strict";
import { UsageError } from "../core/errors.ts";
import { handlersOf } from "./handler_module.ts";

const resize = () => "resized";

Deno.test("a function is the handler of the default name; an object, handlers by name", () => {
  assert.deepEqual(handlersOf(resize, "h.ts"), { handler: resize });
  assert.deepEqual(handlersOf({ resize }, "h.ts"), { handlers: { resize } });
  const bare = Object.assign(Object.create(null), { resize });
  assert.deepEqual(handlersOf(bare, "h.ts"), { handlers: bare });
});

Deno.test("any other default export is a usage error naming what is wrong", () => {
  const tried: [unknown, RegExp][] = [
    [undefined, /it has none$/],
    [null, /it is null$/],
    [42, /it is a number$/],
    [[resize], /it is an array$/],
    [new Map([["resize", resize]]), /it is an instance of Map$/],
    [{}, /it is an empty object$/],
    [{ resize, email: "send" }, /"email" is a string$/],
    [{ ["x".repeat(201)]: resize }, /a task name is longer than 200 characters$/],
  ];
  for (const [exported, reason] of tried) {
    assert.throws(() => handlersOf(exported, "h.ts"), (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, /^Invalid --handler "h\.ts": its default export must be a /);
      assert.match(error.message, reason);
      return true;
    });
  }
});
