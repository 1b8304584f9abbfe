import assert from "node:assert/strict";
import { EventLoopLag, LAG_INTERVAL_MS, LAG_WINDOW } from "./_event_loop_lag.ts";
import { serveHealth } from "./health.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

Deno.test({
  name: "the event loop's lag is the worst recent tick's, or how overdue the next one is",
  ...options,
  fn() {
    const lag = new EventLoopLag(0);
    lag.tick(LAG_INTERVAL_MS); // on time
    assert.equal(lag.lag(LAG_INTERVAL_MS), 0);
    lag.tick(2 * LAG_INTERVAL_MS + 300); // 300 ms late
    assert.equal(lag.lag(2 * LAG_INTERVAL_MS + 300), 300);
    // Stalled now: the next tick is 2 s overdue.
    assert.equal(lag.lag(3 * LAG_INTERVAL_MS + 300 + 2_000), 2_000);
    // The late tick is forgotten after LAG_WINDOW on-time ones.
    let now = 2 * LAG_INTERVAL_MS + 300;
    for (let i = 0; i < LAG_WINDOW; i++) lag.tick(now += LAG_INTERVAL_MS);
    assert.equal(lag.lag(now), 0);
  },
});

Deno.test({
  name: "/livez answers 503 stalled once the event loop was blocked beyond maxEventLoopLag, and " +
    "/readyz is not ready before a worker is attached",
  ...options,
  async fn() {
    await using health = serveHealth({ port: 0, maxEventLoopLag: 100 });
    const live = await fetch(`${health.url}/livez`);
    assert.equal(live.status, 200);
    assert.equal((await live.json()).status, "live");
    const ready = await fetch(`${health.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), {
      status: "not ready",
      reason: "the worker is not consuming yet",
    });
    // A handler's synchronous work holds the loop for a second: ten times the limit.
    const until = performance.now() + 1_000;
    while (performance.now() < until) { /* blocked */ }
    const stalled = await fetch(`${health.url}/livez`);
    assert.equal(stalled.status, 503);
    const body = await stalled.json();
    assert.equal(body.status, "stalled");
    assert.ok(body.eventLoopLagMs > 100, JSON.stringify(body));
  },
});
