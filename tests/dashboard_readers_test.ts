/**
 * Pages that stop reading: the dashboard must not keep what it cannot send them.
 */
import assert from "node:assert/strict";
import { declareTopology } from "../lib/core/topology.ts";
import { Scenario, within } from "../testing/scenario.ts";
import { rssMiB, spawnDashboard, StateStream, workerIn } from "./_dashboard.ts";

/** Streams opened and never read. */
const STALLED = 10;

/**
 * Most the dashboard's resident set may rise, in MiB, from its peak in the warm-up (the same
 * load, no stalled page) to its peak while ten stalled pages are open and until they are dropped.
 * What it may keep for them: at most 4 MiB queued per page (MAX_UNSENT_BYTES), the same bytes for
 * every page (a message is encoded once for all), plus the first state each was sent (1 MB with
 * 5000 task events) while the server hands it to the socket. The rest is the heap's own slack:
 * this phase without any stalled page measured +15 to +42 MiB (the dashboard builds five states
 * of 1 MB a second under load), with ten +25 to +45 MiB. Without the bound, the ten keep every
 * state sent and are never dropped: +95 MiB after 35 s of this phase, still rising.
 */
const MAX_GROWTH_MIB = 64;

/** Opens the event stream as a client that will never read it. */
async function stalledStream(url: string): Promise<Deno.TcpConn> {
  const { hostname, port } = new URL(url);
  const connection = await Deno.connect({ hostname, port: Number(port) });
  await connection.write(
    new TextEncoder().encode(
      `GET /events HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n\r\n`,
    ),
  );
  return connection;
}

/** Reads a connection to its end; resolves with the bytes read. */
async function readToEnd(connection: Deno.TcpConn): Promise<number> {
  const buffer = new Uint8Array(1 << 20);
  let total = 0;
  try {
    while (true) {
      const n = await connection.read(buffer);
      if (n === null) return total;
      total += n;
    }
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return total;
    throw error;
  }
}

Deno.test({
  name: "ten pages that stop reading are dropped under load, the dashboard's memory stays " +
    "flat, and a page that reads stays live",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    const dashboard = await spawnDashboard(scenario);
    await using page = await StateStream.open(dashboard.url);
    await scenario.startWorker("quick", ["--time-scale", "0", "--concurrency", "4"]);
    const completed = (n: number) => (state: Parameters<typeof workerIn>[0]) =>
      (workerIn(state, "quick")?.completed ?? 0) >= n;

    // The dashboard's resident set, sampled every 100 ms: its highest during each phase.
    let peak = 0;
    const sampler = setInterval(() => peak = Math.max(peak, rssMiB(dashboard.pid)), 100);
    const stalled: Deno.TcpConn[] = [];
    try {
      let warm = 0;
      await scenario.step(t, "a warm-up of 5000 tasks reaches the page", async () => {
        // As many task events as the page's timeline keeps: its states are at their largest.
        await scenario.produce(["--count", "5000", "--min", "0", "--max", "0"]);
        await page.waitFor(completed(5000), "5000 tasks completed by quick", 120_000);
        warm = Math.max(peak, rssMiB(dashboard.pid));
      });

      await scenario.step(t, `${STALLED} stalled pages under 3000 more tasks`, async () => {
        peak = 0;
        for (let i = 0; i < STALLED; i++) stalled.push(await stalledStream(dashboard.url));
        await scenario.produce(["--count", "3000", "--min", "0", "--max", "0"]);
        await page.waitFor(completed(8000), "8000 tasks completed by quick", 120_000);
        // The dashboard keeps sending a state every second: the stalled pages fill up.
        await dashboard.child.waitForLines(/Dropped a page that stopped reading/, STALLED, 60_000);
        peak = Math.max(peak, rssMiB(dashboard.pid));
        console.log(
          `dashboard RSS: peak ${warm.toFixed(1)} MiB in the warm-up, ${peak.toFixed(1)} MiB ` +
            `(${(peak - warm).toFixed(1)}) with ${STALLED} stalled pages`,
        );
        assert.ok(
          peak - warm < MAX_GROWTH_MIB,
          `RSS grew by ${(peak - warm).toFixed(1)} MiB, more than ${MAX_GROWTH_MIB}`,
        );
      });

      await scenario.step(t, "each stalled stream was ended by the dashboard", async () => {
        for (const [i, connection] of stalled.entries()) {
          // Whatever was in flight, then the end: a stream still served would never end.
          await within(readToEnd(connection), 10_000, `the end of stalled stream ${i + 1}`);
        }
      });
    } finally {
      clearInterval(sampler);
      for (const connection of stalled) connection.close();
    }

    await scenario.step(t, "the page that reads still gets live updates", async () => {
      await scenario.produce(["--count", "1", "--min", "0", "--max", "0"]);
      await page.waitFor(completed(8001), "task 8001 completed by quick");
    });
    scenario.pass();
  },
});
