/**
 * Forged worker events: anyone who may publish to `<queue>.events` can send them (events are
 * not signed), but what the readers keep and draw stays bounded: the workers they track and show,
 * and the time range of their timelines.
 */
import assert from "node:assert/strict";
import type { TareasEvent, TaskEvent } from "../lib/core/events.ts";
import { declareTopology } from "../lib/core/topology.ts";
import { Scenario } from "../testing/scenario.ts";
import { spawnDashboard, StateStream } from "./_dashboard.ts";

/** Forged names, each with a completion of a real task, and as many with a status report. */
const FORGED = 20_000;
/** Events per message: about 35 KB, under the 64 KiB a reader accepts. */
const BATCH = 200;

/** Publishes `events` on the queue's events exchange, `BATCH` to a message. */
function publishAll(scenario: Scenario, events: TareasEvent[]): void {
  for (let i = 0; i < events.length; i += BATCH) {
    const batch = events.slice(i, i + BATCH);
    scenario.publishEvent(batch[0]!.type, batch);
  }
}

Deno.test({
  name: "forged worker names and times bound what produce --wait prints and draws, and what " +
    "the dashboard shows",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    // deno task produce may write its --timeline only under the project's directory.
    const root = new URL("../", import.meta.url).pathname;
    const svg = await Deno.makeTempFile({ dir: root, prefix: "timeline-test-", suffix: ".svg" });
    try {
      const dashboard = await spawnDashboard(scenario);
      await using page = await StateStream.open(dashboard.url);
      await scenario.startWorker("honest", ["--time-scale", "0.2"]);
      const producer = await scenario.startWaitingProducer(10, 1, 60, scenario.url, {
        args: ["--timeline", svg],
      });

      await scenario.step(t, "a hostile publisher forges events during the run", async () => {
        const started = await scenario.waitForEvent<TaskEvent>(
          (e) => e.type === "task.started",
          "a first task started",
        );
        const now = new Date().toISOString();
        const real = { taskId: started.taskId, seq: started.seq, attempt: 1, redelivered: false };
        publishAll(
          scenario,
          Array.from({ length: FORGED }, (_, i) => ({
            type: "task.completed",
            worker: `forger-${i}`,
            at: now,
            ...real,
            durationMs: 1,
          })),
        );
        publishAll(
          scenario,
          Array.from({ length: FORGED }, (_, i) => ({
            type: "worker.status",
            worker: `forged-${i}`,
            at: now,
            inHand: 0,
          })),
        );
        // Tried: one `at` of year 275760 stretched the run's timeline to "17280000000000s".
        const at = "+275760-09-13T00:00:00.000Z";
        publishAll(scenario, [{ type: "task.completed", worker: "honest", at, ...real }]);
        publishAll(scenario, [{
          type: "task.started",
          worker: "honest",
          at: "1970-01-01",
          ...real,
        }]);
      });

      await scenario.step(t, "produce --wait prints a bounded summary and timeline", async () => {
        const status = await producer.exit(60_000);
        assert.equal(status.code, 0, producer.output());
        const output = producer.lines;
        // Tried: 20,017 summary lines, one per forged name. Now at most 50 workers and 20 tasks
        // of each kind in the summary, 100 rows in the timeline.
        assert.ok(output.length < 250, `${output.length} lines`);
        assert.ok(output.includes("10/10 tasks completed"), producer.output());
        assert.ok(output.some((line) => /^ {2}honest +\d+ /.test(line)), "honest is listed");
        assert.ok(output.some((line) => /^ {2}… and \d+ more workers: \d+ tasks$/.test(line)));
        const headline = output.find((line) => /^\d+ workers · \d+ tasks · /.test(line));
        const seconds = Number(/ · ([\d.]+)s$/.exec(headline ?? "")?.[1]);
        assert.ok(seconds < 120, `the timeline spans the run, not "${headline}"`);
        assert.ok(
          output.includes("2 events stamped outside the run's time window left out"),
          producer.output(),
        );
        const drawing = await Deno.readTextFile(svg);
        // Tried: an SVG of 8.6 MB.
        assert.ok(drawing.length < 250_000, `an SVG of ${drawing.length} characters`);
        assert.match(drawing, /data-worker="honest"/);
        assert.match(drawing, /more workers not drawn/);
      });

      await scenario.step(t, "the dashboard shows at most 100 workers", async () => {
        // The monitor tracks 1000 names: the rest, 40,001 and more seen, are dropped and counted.
        const state = await page.waitFor(
          (state) => state.snapshot.workersDropped >= 2 * FORGED + 1 - 1000,
          "every forged name seen",
        );
        assert.ok(state.snapshot.workers.length <= 100, `${state.snapshot.workers.length} rows`);
        assert.ok(state.timeline.rows.length <= 100, `${state.timeline.rows.length} rows`);
        const now = (state as unknown as { now: number }).now;
        for (const row of state.timeline.rows) {
          for (const bar of row.bars) {
            assert.ok(bar.start >= now - 6 * 60_000 && bar.end <= now + 60_000, row.worker);
          }
        }
      });
    } finally {
      await Deno.remove(svg);
    }
    scenario.pass();
  },
});
