import assert from "node:assert/strict";
import type { StatusSnapshot } from "../tools/status.ts";
import { run, Scenario } from "../testing/scenario.ts";

Deno.test({
  name: "status --json reports ready, unacked, consumers, dead-lettered and the workers",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await scenario.startWorker("busy", ["--concurrency", "2", "--time-scale", "100"]);
    await scenario.produce(["--count", "5"]);
    for (const n of [1, 2]) {
      await scenario.waitForEvent(
        () => scenario.events.filter((e) => e.type === "task.started").length >= n,
        `task ${n} of 2 to start`,
      );
    }
    const result = await run("tools/status.ts", ["--json", "--queue", scenario.queue], {
      AMQP_URL: scenario.url,
    });
    assert.equal(result.code, 0, result.stderr);
    const snapshot: StatusSnapshot = JSON.parse(result.stdout);
    assert.equal(snapshot.ready, 3);
    assert.equal(snapshot.unacked, 2);
    assert.equal(snapshot.consumers, 1);
    assert.equal(snapshot.dead, 0);
    assert.equal(snapshot.workers.length, 1);
    assert.deepEqual(
      { ...snapshot.workers[0], lastSeen: "" },
      { name: "busy", state: "online", lastSeen: "", inHand: 2, completed: 0, failed: 0 },
    );
    scenario.pass();
  },
});

Deno.test({
  name: "status of a queue that does not exist is one line and exit 2",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const scenario = await Scenario.open();
    await scenario[Symbol.asyncDispose]();
    const result = await run("tools/status.ts", ["--queue", scenario.queue], {
      AMQP_URL: scenario.url,
    });
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr.trim(),
      `status: Queue "${scenario.queue}" does not exist: nothing has declared it yet`,
    );
  },
});
