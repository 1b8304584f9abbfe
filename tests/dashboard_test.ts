import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startDashboard } from "../lib/operate/dashboard/mod.ts";
import type { TaskEvent } from "../lib/core/events.ts";
import { createTask } from "../lib/core/task.ts";
import { deadQueue, declareTopology } from "../lib/core/topology.ts";
import { CHROMIUM, inPage, launchBrowser, waitInPage } from "../testing/browser.ts";
import { Child, run, Scenario } from "../testing/scenario.ts";

const noBrowser = CHROMIUM === undefined;
if (noBrowser) console.warn("Chromium not found (/usr/bin/chromium): dashboard tests skipped");

const ROOT = new URL("../", import.meta.url).pathname;

/** Sends a GET with the given Host header over a raw connection; returns the response head. */
async function rawGet(url: string, host: string): Promise<string> {
  const { hostname, port } = new URL(url);
  using connection = await Deno.connect({ hostname, port: Number(port) });
  await connection.write(
    new TextEncoder().encode(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
  );
  const buffer = new Uint8Array(4096);
  const n = await connection.read(buffer);
  return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
}

/** JavaScript for the page: the `data-state` of a worker's row. */
const stateOf = (worker: string) =>
  `document.querySelector(${JSON.stringify(`#workers tr[data-worker="${worker}"]`)})` +
  `?.dataset.state`;

/** JavaScript for the page: whether an element matches `selector`. */
const has = (selector: string) => `(document.querySelector(${JSON.stringify(selector)}) !== null)`;

/** JavaScript for the page: the text of the first element matching `selector`. */
const textOf = (selector: string) =>
  `(document.querySelector(${JSON.stringify(selector)})?.textContent ?? "")`;

Deno.test({
  name: "the dashboard shows the backlog, workers coming online, progress, a lost worker and " +
    "the redelivery of its task",
  ignore: noBrowser,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    await scenario.produce(["--count", "6", "--min", "2", "--max", "2"]);
    await using dashboard = await startDashboard({
      url: scenario.url,
      queue: scenario.queue,
      port: 0,
    });
    await using browser = await launchBrowser();
    const page = await browser.open(dashboard.url);

    await scenario.step(t, "a queue with a backlog of 6 shows 6 ready", async () => {
      await waitInPage(page, "6 ready", `${textOf("#ready")} === "6"`);
      assert.equal(await inPage(page, textOf("#stream-status")), "live");
    });
    await scenario.step(t, "a worker started shows online within 2 s", async () => {
      await scenario.startWorker("alpha", ["--time-scale", "1"]);
      await waitInPage(page, "alpha online", `${stateOf("alpha")} === "online"`, 2000);
    });
    await scenario.step(t, "completing tasks move the counts and add bars", async () => {
      await scenario.waitForEvent((e) => e.type === "task.completed", "a first completion");
      await waitInPage(
        page,
        "a completed bar on alpha's row and fewer than 6 ready",
        `${has('#timeline g.row[data-worker="alpha"] g.bar.completed')} && ` +
          `Number(${textOf("#ready")}) < 6 && ` +
          `Number(${textOf('#workers tr[data-worker="alpha"] .completed')}) >= 1`,
      );
    });
    await scenario.step(
      t,
      "a worker killed mid-task shows lost, its task redelivered",
      async () => {
        await scenario.startWorker("beta", ["--time-scale", "1"]);
        const started = await scenario.waitForNextEvent<TaskEvent>(
          (e) => e.type === "task.started" && e.worker === "alpha",
          "alpha to start another task",
        );
        const alpha = scenario.children.find((child) => child.name === "alpha")!;
        alpha.kill("SIGKILL");
        await alpha.status;
        await scenario.waitForEvent(
          (e) =>
            e.type === "task.started" && e.worker === "beta" && "taskId" in e &&
            e.taskId === started.taskId,
          "beta to run alpha's task again",
        );
        await waitInPage(
          page,
          "alpha lost, its task redelivered on beta's row and interrupted on alpha's",
          `${stateOf("alpha")} === "lost" && ` +
            has(
              `#timeline g.row[data-worker="beta"] g.bar.redelivered[data-task="${started.taskId}"]`,
            ) +
            " && " +
            has(
              `#timeline g.row[data-worker="alpha"] g.bar.interrupted[data-task="${started.taskId}"]`,
            ),
        );
        assert.match(
          await inPage<string>(page, textOf('#workers tr[data-worker="alpha"] .seen')),
          /^\d+ s ago$/,
        );
      },
    );
    scenario.pass();
  },
});

Deno.test({
  name: "a running task that reports progress shows a bar on the timeline and in its worker's row",
  ignore: noBrowser,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    await using dashboard = await startDashboard({
      url: scenario.url,
      queue: scenario.queue,
      port: 0,
    });
    await using browser = await launchBrowser();
    const page = await browser.open(dashboard.url);
    await scenario.startWorker("gauge", [
      ...["--handler", "tests/handlers/reports_progress.ts", "--concurrency", "2"],
    ]);
    // Two tasks run side by side, each holding its one step until the test ends.
    const lines = [[0.4], [{ stage: "upload" }]].map((steps) =>
      JSON.stringify({ steps, holdMs: 600_000 })
    );
    const produced = await run("produce", ["--queue", scenario.queue, "--stdin"], {
      AMQP_URL: scenario.url,
    }, `${lines.join("\n")}\n`);
    assert.equal(produced.code, 0, produced.stderr);
    const bar = '#timeline g.row[data-worker="gauge"] g.bar.running';
    const row = '#workers tr[data-worker="gauge"] .running';
    await scenario.step(
      t,
      "a fraction: a band of 40 % in its bar, a progress in the row",
      async () => {
        await waitInPage(
          page,
          "a running bar at 40 % with its band, and a task at 40 % in the worker's row",
          `${has(`${bar}[data-progress="0.4"] rect.progress`)} && ` +
            `${has(`${row} .task[data-progress="0.4"] progress`)} && ` +
            `/#\\d+\\s+40%/.test(${textOf(row)})`,
        );
      },
    );
    await scenario.step(t, "an object: its JSON in the row and the bar, no band", async () => {
      const object = `${bar}[data-progress='{"stage":"upload"}']`;
      await waitInPage(
        page,
        'the worker\'s row showing {"stage":"upload"}, its bar without a band',
        `${textOf(row)}.includes('{"stage":"upload"}') && ${has(object)} && ` +
          `!${has(`${object} rect.progress`)}`,
      );
    });
    scenario.pass();
  },
});

Deno.test({
  name: "dead letters in the page: reason and payload shown as text, requeue needs the token",
  ignore: noBrowser,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await using scenario = await Scenario.open();
    const evilName = '<img src=x onerror="window.__pwned=1">';
    const task = createTask({ html: "<script>window.__pwned=2</script>" }, { seq: 1 });
    await scenario.step(t, "a malformed message and a task too large die", async () => {
      // Bodies over 64 bytes are refused by this worker: the valid task dies too.
      const strict = await scenario.startWorker(evilName, ["--max-body", "64"]);
      await scenario.publish(Buffer.from("<script>window.__pwned=3</script> not json"));
      await scenario.publish(Buffer.from(JSON.stringify(task)), { messageId: task.id });
      await scenario.waitForEvent(
        () => scenario.events.filter((e) => e.type === "task.dead").length >= 2,
        "2 task.dead events",
      );
      strict.kill("SIGTERM");
      await strict.exit();
    });
    await using dashboard = await startDashboard({
      url: scenario.url,
      queue: scenario.queue,
      port: 0,
    });
    await using browser = await launchBrowser();
    const page = await browser.open(dashboard.url); // no token in the address
    await scenario.step(t, "both appear with their reason, markup shown as text", async () => {
      await waitInPage(
        page,
        "2 dead letters listed",
        `document.querySelectorAll("#dead-letters tbody tr").length === 2`,
      );
      const rows = await inPage<{ id: string; reason: string; payload: string }[]>(
        page,
        `[...document.querySelectorAll("#dead-letters tbody tr")].map((tr) => ({
          id: tr.dataset.id,
          reason: tr.querySelector(".reason").firstChild.textContent,
          payload: tr.querySelector("pre.payload").textContent,
        }))`,
      );
      const malformed = rows.find((row) => row.id !== task.id)!;
      assert.match(malformed.reason, /^Body is not JSON/);
      assert.equal(malformed.payload, "body: <script>window.__pwned=3</script> not json");
      const large = rows.find((row) => row.id === task.id)!;
      assert.match(large.reason, /^Body too large/);
      assert.equal(large.payload, 'payload: {"html":"<script>window.__pwned=2</script>"}');
      assert.ok(
        await inPage(
          page,
          `[...document.querySelectorAll("#dead-letters .worker")].every((element) =>
            element.textContent === ${JSON.stringify(`by ${evilName}`)})`,
        ),
        "the worker's name is shown as text",
      );
      assert.equal(await inPage(page, "window.__pwned ?? null"), null, "no script ran");
      assert.equal(
        await inPage(page, `document.querySelectorAll("main script, main img").length`),
        0,
      );
    });
    await scenario.step(t, "requeue without the token is refused", async () => {
      await page.click(`#dead-letters tr[data-id="${task.id}"] button.requeue`);
      await waitInPage(page, "the refusal", `/Refused/.test(${textOf("#action-result")})`);
      assert.equal(await scenario.ready(deadQueue(scenario.queue)), 2);
      assert.equal(await scenario.ready(), 0);
    });
    await scenario.step(t, "with the token the task goes back and completes", async () => {
      await page.type("#token", dashboard.token);
      await page.click(`#dead-letters tr[data-id="${task.id}"] button.requeue`);
      await waitInPage(
        page,
        "the requeue to succeed",
        `/^Requeued 1/.test(${textOf("#action-result")})`,
      );
      assert.equal(await scenario.ready(deadQueue(scenario.queue)), 1);
      await scenario.startWorker("lenient");
      await scenario.waitForEvent(
        (e) => e.type === "task.completed" && "taskId" in e && e.taskId === task.id,
        "the requeued task to complete",
      );
      await waitInPage(
        page,
        "1 dead letter left",
        `document.querySelectorAll("#dead-letters tbody tr").length === 1`,
      );
    });
    scenario.pass();
  },
});

Deno.test({
  name: "the dashboard refuses actions from another origin and requests for another host",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    await using dashboard = await startDashboard({
      url: scenario.url,
      queue: scenario.queue,
      port: 0,
    });
    const purge = (headers: Record<string, string>) =>
      fetch(`${dashboard.url}api/purge`, { method: "POST", headers, body: "{}" }).then(
        async (response) => ({ status: response.status, body: await response.json() }),
      );
    assert.equal((await purge({})).status, 403, "no token");
    assert.equal((await purge({ "x-tareas-token": "wrong-token" })).status, 403);
    assert.equal(
      (await purge({ "x-tareas-token": dashboard.token, origin: "https://evil.example" })).status,
      403,
      "a page of another site",
    );
    // A page of another site whose name was rebound to 127.0.0.1 sends its own Host header.
    assert.match(await rawGet(dashboard.url, "evil.example"), /^HTTP\/1\.1 421 /, "DNS rebinding");
    const ok = await purge({ "x-tareas-token": dashboard.token });
    assert.deepEqual(ok, { status: 200, body: { ok: true, message: "Deleted 0 dead letters" } });
    const page = await fetch(dashboard.url);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    await page.body?.cancel();
    scenario.pass();
  },
});

Deno.test({
  name: "deno task demo --dashboard: the page tells the story (TAREAS_SCREENSHOT=1 refreshes " +
    "docs/dashboard.png)",
  ignore: noBrowser,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open(); // for its broker URL
    await using demo = new Child("demo", "demo", ["--dashboard", "--count", "14"], {
      AMQP_URL: scenario.url,
      LOG_LEVEL: "warning",
    });
    const line = await demo.waitForLine(/^\[demo\] dashboard: http/, 60_000);
    const address = line.replace("[demo] dashboard: ", "");
    await using browser = await launchBrowser();
    const page = await browser.open(address, { width: 1200, height: 500 });
    await page.select("#window", "30");
    await waitInPage(
      page,
      "the killed worker lost, its task completed elsewhere and several completed bars",
      `${has('#workers tr[data-state="lost"]')} && ${
        has("#timeline g.bar.redelivered.completed")
      }` +
        ` && document.querySelectorAll("#timeline g.bar.completed").length >= 6`,
      90_000,
    );
    if (Deno.env.get("TAREAS_SCREENSHOT") === "1") {
      await page.screenshot({ path: `${ROOT}docs/dashboard.png`, fullPage: true });
    }
    const status = await demo.exit(120_000);
    assert.equal(status.code, 0, demo.output());
    assert.ok(
      demo.lines.some((l) => /all 14 tasks completed exactly once/.test(l)),
      demo.output(),
    );
    scenario.pass();
  },
});

Deno.test({
  name: "a page that lost its stream says so, and reconnects when the dashboard is back",
  ignore: noBrowser,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    const options = { url: scenario.url, queue: scenario.queue, port: 0 };
    const first = await startDashboard(options);
    const port = Number(new URL(first.url).port);
    await using browser = await launchBrowser();
    const page = await browser.open(first.url);
    await waitInPage(page, "the stream live", `${textOf("#stream-status")} === "live"`);
    await first.close();
    await waitInPage(page, "the stream lost", `/lost/.test(${textOf("#stream-status")})`);
    await using _second = await startDashboard({ ...options, port });
    await waitInPage(page, "the stream live again", `${textOf("#stream-status")} === "live"`);
    scenario.pass();
  },
});
