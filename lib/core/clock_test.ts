import assert from "node:assert/strict";
import { isoTime } from "./clock.ts";

Deno.test("isoTime gives what toISOString gives, across seconds, days and centuries", () => {
  const now = Date.now();
  const samples = [
    0,
    1,
    999,
    1_000,
    -1,
    -1_001,
    now,
    now + 1,
    now + 999,
    now - 86_400_000,
    Date.UTC(2026, 11, 31, 23, 59, 59, 999),
    Date.UTC(2027, 0, 1),
    Date.UTC(10_000, 0, 1, 0, 0, 0, 7), // extended year: "+010000-…"
  ];
  // In order and out of order, so that the cached second changes both ways.
  for (const ms of [...samples, ...samples.toReversed(), ...samples]) {
    assert.equal(isoTime(ms), new Date(ms).toISOString(), `isoTime(${ms})`);
  }
  const before = Date.now();
  const stamped = Date.parse(isoTime());
  assert.ok(stamped >= before && stamped <= Date.now(), "isoTime() is the current time");
});
