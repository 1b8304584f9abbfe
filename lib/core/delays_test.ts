import assert from "node:assert/strict";
import { UsageError } from "./errors.ts";
import {
  DELAY_LEVELS,
  DELAY_UNIT_MS,
  delayLevel,
  delayRoute,
  levelPattern,
  MAX_DELAY_MS,
} from "./delays.ts";

/** Where a topic pattern of `*`, `0` and `1` words matches a routing key of as many words. */
function matches(pattern: string, key: string): boolean {
  const p = pattern.split(".");
  const k = key.split(".");
  return p.length === k.length && p.every((word, i) => word === "*" || word === k[i]);
}

/** Follows a routing key down the ladder: the levels whose queue the message waits in. */
function waits(routingKey: string): number[] {
  const levels: number[] = [];
  for (let level = DELAY_LEVELS - 1; level >= 0; level--) {
    const toQueue = matches(levelPattern(level, 1), routingKey);
    const onward = matches(levelPattern(level, 0), routingKey);
    assert.ok(toQueue !== onward, `level ${level}: exactly one binding matches ${routingKey}`);
    if (toQueue) levels.push(level);
  }
  return levels;
}

Deno.test("a delay waits in the levels of its bits, highest first, and adds up to the delay rounded up", () => {
  for (
    const ms of [
      0,
      1,
      99,
      100,
      101,
      1_000,
      1_500,
      60_000,
      86_400_000,
      30 * 86_400_000,
      MAX_DELAY_MS,
    ]
  ) {
    const route = delayRoute(ms);
    const levels = waits(route.routingKey);
    const entry = levels[0] ?? 0;
    assert.equal(route.exchange, delayLevel(entry), "it enters at its highest 1 bit");
    assert.deepEqual(levels, [...levels].sort((a, b) => b - a), "highest level first");
    const waited = levels.reduce((sum, level) => sum + 2 ** level * DELAY_UNIT_MS, 0);
    assert.equal(waited, route.delayMs, `${ms} ms waits ${waited}`);
    assert.ok(route.delayMs >= ms, "never early");
    assert.ok(route.delayMs - ms < DELAY_UNIT_MS, "late by less than a unit");
  }
});

Deno.test("30 days fit the ladder; a negative, NaN or longer delay is refused in one line", () => {
  assert.ok(MAX_DELAY_MS >= 30 * 86_400_000);
  for (const ms of [-1, Number.NaN, Infinity, MAX_DELAY_MS + 1]) {
    assert.throws(() => delayRoute(ms), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /^Invalid delay .*: expected milliseconds from 0 to/);
      return true;
    });
  }
});
