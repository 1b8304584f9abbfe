import assert from "node:assert/strict";
import { TaskFormatError } from "./errors.ts";
import {
  afterFailure,
  deliveriesUsedUp,
  MAX_RETRY_DELAY_MS,
  readAttempt,
  republishProperties,
  SENDER_HEADERS_BUDGET,
} from "./rules.ts";
import { DELIVERY_LIMIT } from "./topology.ts";

Deno.test("the attempt counts earlier hops' attempts and this hop's returns", () => {
  assert.deepEqual(readAttempt(undefined, false), { attempt: 1, returns: 0 });
  assert.deepEqual(readAttempt({ "x-tareas-attempts": 2 }, false), { attempt: 3, returns: 0 });
  assert.deepEqual(readAttempt({ "x-delivery-count": 2 }, true), { attempt: 3, returns: 2 });
  assert.deepEqual(
    readAttempt({ "x-tareas-attempts": 1, "x-delivery-count": 1 }, true),
    { attempt: 3, returns: 1 },
  );
  // A classic queue flags a redelivery without counting it: at least one return.
  assert.deepEqual(readAttempt({}, true), { attempt: 2, returns: 1 });
});

Deno.test("a publisher cannot claim returns on a first delivery", () => {
  // x-delivery-count is the broker's; on a delivery it does not flag as redelivered, ignore it.
  assert.deepEqual(readAttempt({ "x-delivery-count": 5 }, false), { attempt: 1, returns: 0 });
  assert.equal(deliveriesUsedUp(readAttempt({ "x-delivery-count": 5 }, false)), false);
});

Deno.test("attempt headers that are not whole numbers in range are malformed", async (t) => {
  const bad: unknown[] = [-1_000_000, -1, 0.5, 1e300, -1e300, "3", NaN, Infinity, null, [1], {}];
  for (const value of bad) {
    await t.step(`x-tareas-attempts: ${String(value)}`, () => {
      assert.throws(
        () => readAttempt({ "x-tareas-attempts": value }, false),
        (error: unknown) =>
          error instanceof TaskFormatError &&
          /^Header x-tareas-attempts must be a whole number from 0 to \d+, got /.test(
            error.message,
          ),
      );
    });
  }
  await t.step("x-delivery-count on a redelivery", () => {
    assert.throws(() => readAttempt({ "x-delivery-count": -3 }, true), TaskFormatError);
  });
});

Deno.test("deliveries are used up at the delivery limit of returns", () => {
  assert.equal(deliveriesUsedUp({ attempt: DELIVERY_LIMIT, returns: DELIVERY_LIMIT - 1 }), false);
  assert.equal(deliveriesUsedUp({ attempt: DELIVERY_LIMIT + 1, returns: DELIVERY_LIMIT }), true);
});

Deno.test("a failed attempt is retried with doubling whole-millisecond delays, then dead", () => {
  const options = { maxAttempts: 4, retryDelayMs: 100 };
  assert.deepEqual(afterFailure(1, options), { action: "retry", delayMs: 100 });
  assert.deepEqual(afterFailure(2, options), { action: "retry", delayMs: 200 });
  assert.deepEqual(afterFailure(3, options), { action: "retry", delayMs: 400 });
  assert.deepEqual(afterFailure(4, options), { action: "dead" });
  assert.deepEqual(afterFailure(9, options), { action: "dead" });
  assert.deepEqual(afterFailure(40, { maxAttempts: 50, retryDelayMs: 1000 }), {
    action: "retry",
    delayMs: MAX_RETRY_DELAY_MS,
  });
  assert.deepEqual(afterFailure(1, { maxAttempts: 5, retryDelayMs: 0.4 }), {
    action: "retry",
    delayMs: 0,
  });
});

Deno.test("a republished message keeps its identity and the sender's plain headers", () => {
  const properties = republishProperties({
    messageId: "m1",
    contentType: "application/json",
    timestamp: 1_700_000_000,
    correlationId: 7, // not a string: dropped
    headers: {
      traceparent: "00-abc-def-01",
      "x-delivery-count": 3,
      "x-death": [{}],
      "x-first-death-reason": "expired",
      "x-tareas-attempts": -99,
      "x-tareas-reason": "forged",
      double: -1e300,
      fraction: 0.5,
      table: { a: 1 },
      flag: true,
    },
  }, { "x-tareas-attempts": 2, "x-tareas-reason": "boom" });
  assert.deepEqual(properties, {
    persistent: true,
    messageId: "m1",
    contentType: "application/json",
    timestamp: 1_700_000_000,
    headers: {
      traceparent: "00-abc-def-01",
      flag: true,
      "x-tareas-attempts": 2,
      "x-tareas-reason": "boom",
    },
  });
});

Deno.test("the sender's headers are carried within a size budget", () => {
  const huge = "x".repeat(65_410);
  const headers: Record<string, unknown> = { "x-pad": huge, small: "kept" };
  for (let i = 0; i < 1000; i++) headers[`h${i}`] = "y".repeat(100);
  const properties = republishProperties({ headers }, { "x-tareas-attempts": 1 });
  const size = Object.entries(properties.headers)
    .reduce((sum, [key, value]) => sum + key.length + String(value).length, 0);
  assert.equal(
    properties.headers["x-pad"],
    undefined,
    "a header larger than the budget is left out",
  );
  assert.equal(properties.headers.small, "kept");
  assert.equal(properties.headers["x-tareas-attempts"], 1);
  assert.ok(size <= SENDER_HEADERS_BUDGET + 100, `headers of ${size} bytes`);
});
