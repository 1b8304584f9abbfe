/**
 * The short-task setting (`--prefetch 200 --concurrency 200`, acks that cover runs of finished
 * deliveries) weakens nothing: a SIGKILLed worker's unacked tasks come back and complete, at most
 * its prefetch of them, and no task is acked before it finished.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/events.ts";
import { Scenario } from "../testing/scenario.ts";

Deno.test({
  name: "prefetch 200, concurrency 200: a worker SIGKILLed mid-run sends back at most 200 " +
    "tasks, and all 3,000 complete",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    // 20-100 ms tasks, so that the kill finds up to 200 in hand, finished ones among unfinished.
    const args = ["--prefetch", "200", "--concurrency", "200", "--time-scale", "0.02"];
    const a = await scenario.startWorker("a", args);
    await scenario.startWorker("b", args);
    await scenario.produce(["--count", "3000", "--min", "1", "--max", "5"]);
    const byA = () => scenario.completions().filter((e) => e.worker === "a").length;
    await scenario.waitForEvent(() => byA() >= 500, "500 completions by a", 60_000);
    a.kill("SIGKILL");
    await a.exit();
    const beforeKill = scenario.completions().length;

    await scenario.waitForCompleted(3000, 60_000);
    const completions = scenario.completions();
    assert.equal(new Set(completions.map((e) => e.taskId)).size, 3000, "every task completed");
    const sentBack = new Set(
      completions.filter((e: TaskEvent) => e.redelivered).map((e) => e.taskId),
    );
    assert.ok(sentBack.size > 0, "the kill found tasks in hand, and they came back");
    assert.ok(sentBack.size <= 200, `${sentBack.size} tasks came back: at most the prefetch`);
    assert.ok(completions.length - 3000 <= 200, "duplicates only among the tasks sent back");
    const seen = new Set<string>();
    for (const { taskId } of completions) {
      if (seen.has(taskId)) assert.ok(sentBack.has(taskId), `${taskId} ran twice: it came back`);
      seen.add(taskId);
    }
    const byB = completions.slice(0, beforeKill).filter((e) => e.worker === "b").length;
    assert.ok(byB > 0, "both workers took tasks before the kill");
    console.log(
      `${sentBack.size} task(s) came back after the kill, ${completions.length - 3000} ran ` +
        `twice; before it, a completed ${byA()} and b ${byB}`,
    );
    scenario.pass();
  },
});
