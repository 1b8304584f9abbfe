/**
 * The long-running views (the dashboard, `status --watch`) opened before anything declared their
 * queue, or kept open while it is deleted and declared again (a migration does that): they stay
 * up, say they wait, and go live once the queue exists, without a restart.
 */
import assert from "node:assert/strict";
import { deadQueue } from "../lib/core/topology.ts";
import { eventsExchange } from "../lib/core/events.ts";
import { CHROMIUM, launchBrowser, waitInPage } from "../testing/browser.ts";
import { Child, Scenario } from "../testing/scenario.ts";
import { type PageState, spawnDashboard, StateStream, workerIn } from "./_dashboard.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/**
 * Deletes the queue, its dead-letter queue and its events exchange, as if it had never been;
 * then subscribes the scenario to the events again (which declares the exchange anew: a watcher
 * still bound to the old one would hear nothing).
 */
async function deleteQueue(scenario: Scenario): Promise<void> {
  await scenario.channel.deleteQueue(scenario.queue);
  await scenario.channel.deleteQueue(deadQueue(scenario.queue));
  await scenario.channel.deleteExchange(eventsExchange(scenario.queue));
  await scenario.reconnect();
}

/** Stops a worker with SIGTERM and waits for it to exit. */
async function stop(worker: Child): Promise<void> {
  worker.kill("SIGTERM");
  await worker.exit();
}

const completedBy = (name: string, n: number) => (state: PageState) =>
  state.declared && (workerIn(state, name)?.completed ?? 0) >= n;

Deno.test({
  name: "the dashboard opened before its queue exists waits for it, goes live once it is " +
    "declared, and waits again while it is gone",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open(); // a fresh queue name: nothing declared it
    const waiting = `waiting for queue ${scenario.queue} to be declared`;
    // Tried on main: `Queue "…" does not exist: nothing has declared it yet`, exit 2.
    const dashboard = await spawnDashboard(scenario);
    await using page = await StateStream.open(dashboard.url);
    await using browser = CHROMIUM === undefined ? undefined : await launchBrowser();
    const tab = await browser?.open(dashboard.url);
    const pageSays = (what: string, expression: string) =>
      tab === undefined ? Promise.resolve() : waitInPage(tab, what, expression);

    await scenario.step(t, "it stays up and says it waits for the queue", async () => {
      await page.waitFor((state) => !state.declared, "the queue not declared");
      const purge = await fetch(new URL("/api/purge", dashboard.url), {
        method: "POST",
        headers: { "x-tareas-token": dashboard.token },
        body: "{}",
      });
      assert.equal(purge.status, 409, "no dead letters to purge yet");
      assert.match((await purge.json()).message, /does not exist yet/);
      await pageSays(
        `"${waiting}" on the page`,
        `document.querySelector("#waiting").textContent === ${JSON.stringify(waiting)} && ` +
          `!document.querySelector("#waiting").hidden`,
      );
    });

    await scenario.step(t, "a worker declares the queue: its work shows up", async () => {
      await scenario.startWorker("first", ["--time-scale", "0"]);
      await scenario.produce(["--count", "2", "--min", "0", "--max", "0"]);
      await page.waitFor(completedBy("first", 2), "2 tasks completed by first", 20_000);
      await pageSays(
        "the waiting notice gone and first's completions in the table",
        `document.querySelector("#waiting").hidden && Number(document.querySelector(` +
          `'#workers tr[data-worker="first"] .completed')?.textContent) >= 2`,
      );
    });

    await scenario.step(t, "the queue deleted, it waits again", async () => {
      await stop(scenario.children.find((child) => child.name === "first")!);
      await deleteQueue(scenario);
      await page.waitForNext((state) => !state.declared, "the queue not declared");
      await pageSays("the waiting notice again", `!document.querySelector("#waiting").hidden`);
    });

    await scenario.step(t, "declared again, with a new events exchange: live again", async () => {
      await scenario.startWorker("second", ["--time-scale", "0"]);
      await scenario.produce(["--count", "1", "--min", "0", "--max", "0"]);
      await page.waitFor(completedBy("second", 1), "1 task completed by second", 20_000);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "status --watch started before its queue exists waits for it, shows it once declared, " +
    "and waits again while it is gone",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open(); // a fresh queue name: nothing declared it
    const waiting = new RegExp(`^waiting for queue ${scenario.queue} to be declared$`);
    // Tried on main: `status: Queue "…" does not exist: nothing has declared it yet`, exit 2.
    const status = new Child("status", "status", ["--watch", "--queue", scenario.queue], {
      AMQP_URL: scenario.url,
    });
    scenario.children.push(status);
    const row = (name: string, completed: number) =>
      new RegExp(`^\\s+${name}\\s+online\\s+\\d+\\s+${completed}\\s+0\\s`);

    await scenario.step(t, "it stays up and says it waits for the queue", async () => {
      await status.waitForLine(waiting);
      await status.waitForLines(waiting, 2); // a second snapshot: still running
    });

    await scenario.step(t, "a worker declares the queue: its work shows up", async () => {
      await scenario.startWorker("first", ["--time-scale", "0"]);
      await scenario.produce(["--count", "2", "--min", "0", "--max", "0"]);
      await status.waitForLine(row("first", 2));
    });

    await scenario.step(t, "the queue deleted, it waits again", async () => {
      await stop(scenario.children.find((child) => child.name === "first")!);
      const before = status.lines.filter((line) => waiting.test(line)).length;
      await deleteQueue(scenario);
      await status.waitForLines(waiting, before + 1);
    });

    await scenario.step(t, "declared again, with a new events exchange: live again", async () => {
      await scenario.startWorker("second", ["--time-scale", "0"]);
      await scenario.produce(["--count", "1", "--min", "0", "--max", "0"]);
      await status.waitForLine(row("second", 1));
    });
    scenario.pass();
  },
});
