/**
 * `deno task work --health-port 0` as a person (or an orchestrator) runs it: `/livez` answers
 * while the process does, `/readyz` is ready while the worker consumes, not ready while it
 * reconnects after a broker restart (and ready again after, the same process), and not ready
 * from SIGTERM on while it drains its task in hand. Its metrics' readiness and reconnects agree.
 */
import assert from "node:assert/strict";
import { canStartPrivateNode, startPrivateNode } from "../lib/operate/local_broker.ts";
import { createTask } from "../lib/core/task.ts";
import { type Child, Scenario, TerminalChild } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** A health check's status and JSON body. */
async function probe(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  const text = await response.text();
  assert.equal(response.headers.get("content-type"), "application/json", text);
  return { status: response.status, body: JSON.parse(text) };
}

/** The health server's address, from the worker's readiness line. */
async function healthUrl(worker: Child): Promise<string> {
  const line = await worker.waitForLine(/Health checks on http/);
  const url = /Health checks on (http:\/\/127\.0\.0\.1:\d+)\/livez/.exec(line)?.[1];
  assert.ok(url, `an address on 127.0.0.1 by default: ${line}`);
  return url;
}

/** The value of a worker gauge or counter of `queue` on the worker's `/metrics`. */
async function metric(url: string, name: string, queue: string): Promise<number> {
  const text = await (await fetch(url)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{queue="${queue}"} `));
  assert.ok(line, `${name} of ${queue} in ${text}`);
  return Number(line.split(" ")[1]);
}

/** How many `worker.online` events `worker` has published so far. */
function onlineCount(scenario: Scenario, worker: string): number {
  return scenario.events.filter((e) => e.type === "worker.online" && e.worker === worker).length;
}

Deno.test({
  name: "/readyz is not ready while the worker reconnects after a broker restart, and ready " +
    "again after; /livez stays live; the metrics say the same and count the reconnect",
  // Needs rabbitmq-server installed to start a node it may kill (CI installs it).
  ignore: !await canStartPrivateNode(),
  ...options,
  async fn(t) {
    await using node = await startPrivateNode();
    await using scenario = await Scenario.open(node.url, { durableEvents: true });
    let worker!: Child;
    let url = "";
    let metricsUrl = "";

    await scenario.step(t, "consuming: live and ready", async () => {
      worker = await scenario.startWorker("probed", ["--health-port", "0", "--metrics-port", "0"]);
      url = await healthUrl(worker);
      metricsUrl = /Metrics on (\S+)/.exec(await worker.waitForLine(/Metrics on http/))![1]!;
      assert.equal(await metric(metricsUrl, "tareas_worker_ready", scenario.queue), 1);
      assert.deepEqual((await probe(`${url}/readyz`)).body, { status: "ready" });
      const live = await probe(`${url}/livez`);
      assert.equal(live.status, 200);
      assert.equal(live.body.status, "live");
    });

    await scenario.step(t, "broker killed: live, not ready", async () => {
      await node.kill();
      await worker.waitForLine(/Lost connection/, 30_000);
      const ready = await probe(`${url}/readyz`);
      assert.equal(ready.status, 503);
      assert.equal(ready.body.status, "not ready");
      assert.match(String(ready.body.reason), /reconnecting/);
      assert.equal((await probe(`${url}/livez`)).status, 200);
      assert.equal(await metric(metricsUrl, "tareas_worker_ready", scenario.queue), 0);
    });

    await scenario.step(t, "broker back: the same process is ready again", async () => {
      const before = onlineCount(scenario, "probed");
      await node.restart();
      await scenario.reconnect();
      await scenario.waitForEvent(
        () => onlineCount(scenario, "probed") > before,
        "the worker online again",
        60_000,
      );
      assert.ok(worker.running, "the worker never exited");
      assert.deepEqual((await probe(`${url}/readyz`)).body, { status: "ready" });
      assert.equal(await metric(metricsUrl, "tareas_worker_ready", scenario.queue), 1);
      const reconnects = "tareas_worker_reconnects_total";
      assert.equal(await metric(metricsUrl, reconnects, scenario.queue), 1);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "/readyz is not ready from SIGTERM on, while the worker drains its task in hand; the " +
    "task completes and the worker exits 0",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    // One task of complexity 2 at the default time scale: it runs for two seconds.
    const worker = await scenario.startWorker("drained", ["--health-port", "0"]);
    const url = await healthUrl(worker);
    const task = createTask({}, { seq: 1, complexity: 2 });

    await scenario.step(t, "a task in hand: ready", async () => {
      await scenario.publish(task);
      await scenario.waitForEvent((e) => e.type === "task.started", "the task started");
      assert.equal((await probe(`${url}/readyz`)).status, 200);
    });

    await scenario.step(t, "SIGTERM: not ready while it drains, still live", async () => {
      worker.kill("SIGTERM");
      await worker.waitForLine(/Stopping: finishing 1 task\(s\) in hand/);
      const ready = await probe(`${url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(String(ready.body.reason), /stopping/);
      assert.equal((await probe(`${url}/livez`)).status, 200);
      assert.ok(worker.running, "asked while the worker was still draining");
    });

    await scenario.step(t, "the task completes and the worker exits 0", async () => {
      await scenario.waitForCompleted(1);
      assert.equal((await worker.exit()).code, 0);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "deno task work --metrics-port 0 --health-port 0 in a terminal: no prompt, the first " +
    "lines say where the metrics and health checks are, and they answer there",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await using worker = await TerminalChild.start("work", "work", [
      ...["--queue", scenario.queue, "--metrics-port", "0", "--health-port", "0"],
    ], { AMQP_URL: scenario.url });
    const consuming = await worker.waitForLine(/consuming/);
    const screen = worker.screen();
    const lines = screen.slice(0, screen.indexOf(consuming));
    const health = lines.map((l) => /Health checks on (http:\/\/127\.0\.0\.1:\d+)\/livez/.exec(l))
      .find((m) => m)?.[1];
    const metrics = lines.map((l) => /Metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(l))
      .find((m) => m)?.[1];
    assert.ok(health && metrics, `before "consuming", where to look: ${lines.join("\n")}`);
    const ready = await fetch(`${health}/readyz`);
    await ready.body?.cancel();
    assert.equal(ready.status, 200);
    const response = await fetch(metrics);
    assert.match(await response.text(), /^tareas_worker_ready\{queue="[^"]+"\} 1$/m);
    await worker.kill("SIGINT");
    assert.equal((await worker.exit()).code, 0, worker.output());
    assert.doesNotMatch(worker.raw, /Deno requests|Allow\?/, worker.output());
    scenario.pass();
  },
});
