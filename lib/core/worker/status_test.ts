import assert from "node:assert/strict";
import { CompletionRate } from "./status.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** Noon on a day in 2026, in milliseconds since the epoch: a whole minute. */
const T = Date.UTC(2026, 0, 1, 12, 0, 0);

Deno.test("completions within the last minute are counted", options, () => {
  const rate = new CompletionRate();
  assert.equal(rate.lastMinute(T), 0);
  for (const at of [T, T + 1, T + 999, T + 1_000, T + 30_500]) rate.count(at);
  assert.equal(rate.lastMinute(T + 30_500), 5);
  assert.equal(rate.lastMinute(T + 59_999), 5, "the first is 59.999 s old");
});

Deno.test("completions leave the count a minute after their second", options, () => {
  const rate = new CompletionRate();
  rate.count(T + 500);
  rate.count(T + 10_000);
  rate.count(T + 10_999);
  assert.equal(rate.lastMinute(T + 59_999), 3);
  assert.equal(rate.lastMinute(T + 60_000), 2, "the second of the first one has left");
  assert.equal(rate.lastMinute(T + 69_999), 2);
  assert.equal(rate.lastMinute(T + 70_000), 0);
});

Deno.test("counting goes on across a minute and after a long silence", options, () => {
  const rate = new CompletionRate();
  for (let s = 0; s < 90; s++) rate.count(T + s * 1_000); // one a second for 90 s
  assert.equal(rate.lastMinute(T + 89_000), 60, "the last 60 seconds, one each");
  rate.count(T + 3_600_000); // an hour later
  assert.equal(rate.lastMinute(T + 3_600_000), 1, "nothing from an hour ago");
});

Deno.test("twenty thousand completions in one second are all counted", options, () => {
  const rate = new CompletionRate();
  for (let i = 0; i < 20_000; i++) rate.count(T + (i % 1_000));
  assert.equal(rate.lastMinute(T + 999), 20_000);
});
