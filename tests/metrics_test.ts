/**
 * `deno task work --metrics-port 0` as a person runs it, on the real broker: Prometheus scrapes
 * its `/metrics` while 200 tasks of two names run, and the figures match what happened (tasks
 * completed by name, an attempt that failed and was retried, one that failed for good, 50
 * names nobody handles kept to one series); bad metrics and health flags exit 2 with one line
 * before the worker consumes anything.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/core/events.ts";
import { createTask } from "../lib/core/task.ts";
import { run, Scenario, within } from "../testing/scenario.ts";
import { spawnDashboard } from "./_dashboard.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** One sample of a scrape: its metric name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of match[2]?.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g) ?? []) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Scrapes `url` as Prometheus does, and checks the response is the text exposition format. */
async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(url);
  const body = await response.text();
  assert.equal(response.status, 200, body);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseExposition(body);
}

/** The value of the one sample of `name` whose labels include `labels` (0 when none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((sample) =>
    sample.name === name &&
    Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted)
  );
  assert.ok(found.length <= 1, `one sample of ${name} ${JSON.stringify(labels)}: ${found.length}`);
  return found[0]?.value ?? 0;
}

/** The sum of every sample of `name`. */
function total(samples: Sample[], name: string): number {
  return samples.filter((sample) => sample.name === name).reduce((sum, s) => sum + s.value, 0);
}

Deno.test({
  name: "a worker's /metrics, scraped while 200 tasks of two names run, counts what happened " +
    "by task name, and names nobody handles share one series",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const queue = scenario.queue;
    const worker = await scenario.startWorker("metered", [
      ...["--handler", "tests/handlers/metered.ts", "--concurrency", "4"],
      ...["--time-scale", "0.02", "--retry-delay", "0.1", "--metrics-port", "0"],
    ]);
    // The readiness line says where the metrics are: the port 0 asked for is any free one.
    const url = /Metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(
      await worker.waitForLine(/Metrics on http/),
    )![1]!;

    await scenario.step(t, "before any task: the worker's figures, no task series", async () => {
      const samples = await scrape(url);
      assert.equal(value(samples, "tareas_worker_ready", { queue }), 1);
      assert.equal(value(samples, "tareas_worker_prefetch", { queue }), 4);
      assert.equal(value(samples, "tareas_worker_concurrency", { queue }), 4);
      assert.equal(value(samples, "tareas_worker_tasks_in_hand", { queue }), 0);
      assert.equal(value(samples, "tareas_worker_reconnects_total", { queue }), 0);
      assert.equal(total(samples, "tareas_tasks_completed_total"), 0);
    });

    // 100 resize and 100 email tasks of complexity 1 (20 ms each), and 50 tasks of 50 names
    // without a handler, as a hostile publisher would send.
    const producers = ["resize", "email"].map((name) =>
      scenario.spawnProducer(["--count", "100", "--name", name, "--min", "1", "--max", "1"])
    );
    for (let i = 0; i < 50; i++) {
      await scenario.publish(createTask({}, { name: `spam-${i}-${crypto.randomUUID()}`, seq: i }));
    }

    await scenario.step(
      t,
      "scraped mid-run: at least what the events showed, at most 200",
      async () => {
        await scenario.waitForEvent(
          () => scenario.completions().length >= 40,
          "40 completions",
        );
        const seen = scenario.completions().length;
        const samples = await scrape(url);
        const completed = total(samples, "tareas_tasks_completed_total");
        // The worker counts a task before its event reaches the test.
        assert.ok(completed >= seen && completed <= 199, `${completed} completed, ${seen} seen`);
        const inHand = value(samples, "tareas_worker_tasks_in_hand", { queue });
        assert.ok(inHand >= 0 && inHand <= 4, `${inHand} in hand, prefetch 4`);
      },
    );

    await scenario.step(t, "once every task ended, the figures match what happened", async () => {
      for (const producer of producers) assert.equal((await producer.exit()).code, 0);
      await scenario.waitForCompleted(199);
      const dead = () => scenario.events.filter((e) => e.type === "task.dead").length;
      await scenario.waitForEvent(() => dead() >= 51, "51 tasks dead-lettered");
      const samples = await scrape(url);
      const counted = (metric: string, name: string) =>
        value(samples, `tareas_tasks_${metric}_total`, { queue, name });
      assert.equal(counted("completed", "resize"), 100);
      assert.equal(counted("completed", "email"), 99);
      assert.equal(counted("failed", "resize"), 0);
      // Email #1's first attempt (retried) and email #2's only one (dead-lettered).
      assert.equal(counted("failed", "email"), 2);
      assert.equal(counted("retried", "email"), 1);
      assert.equal(counted("dead_lettered", "email"), 1);
      assert.equal(counted("dead_lettered", "(other)"), 50);
      // Every run is in the histogram: email #1 ran twice.
      const runs = (name: string) =>
        value(samples, "tareas_task_duration_seconds_count", { queue, name });
      assert.equal(runs("resize"), 100);
      assert.equal(runs("email"), 101);
      assert.equal(
        value(samples, "tareas_task_duration_seconds_bucket", { queue, name: "email", le: "+Inf" }),
        101,
      );
      // 20 ms of sleep per run at least.
      assert.ok(value(samples, "tareas_task_duration_seconds_sum", { queue, name: "resize" }) >= 2);
      const names = new Set(
        samples.filter((s) => s.name.startsWith("tareas_task")).map((s) => s.labels.name),
      );
      assert.deepEqual([...names].sort(), ["(other)", "email", "resize"]);
      assert.equal(value(samples, "tareas_worker_tasks_in_hand", { queue }), 0);
      // The events tell the same story.
      const failed = scenario.events.filter((e): e is TaskEvent => e.type === "task.failed");
      assert.equal(failed.length, 1);
    });

    await scenario.step(t, "SIGTERM stops it: exit 0", async () => {
      worker.kill("SIGTERM");
      assert.equal((await worker.exit()).code, 0);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "bad metrics and health flags: one line, exit 2, and the queued task is still there",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    await scenario.publish(createTask({}, { seq: 1 }));
    await using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const cases: [string, string[], RegExp][] = [
      [
        "a port above 65535",
        ["--metrics-port", "70000"],
        /^worker: Invalid --metrics-port "70000": /,
      ],
      [
        "a port that is not a number",
        ["--health-port", "abc"],
        /^worker: Invalid --health-port "abc": /,
      ],
      [
        "a host with a space",
        ["--metrics-host", "a b", "--metrics-port", "0"],
        /^worker: Invalid --metrics-host "a b": /,
      ],
      [
        "one port for both",
        ["--metrics-port", "9999", "--health-port", "9999"],
        /^worker: Invalid --health-port 9999: --metrics-port uses it/,
      ],
      [
        "a port in use",
        ["--metrics-port", String(taken.addr.port)],
        /^worker: Cannot listen on 127\.0\.0\.1:\d+ for metrics: /,
      ],
      [
        "a health port in use",
        ["--health-port", String(taken.addr.port)],
        /^worker: Cannot listen on 127\.0\.0\.1:\d+ for health checks: /,
      ],
      [
        "an address not of this machine",
        ["--health-host", "192.0.2.1", "--health-port", "0"],
        /^worker: Cannot listen on 192\.0\.2\.1:0 for health checks: /,
      ],
    ];
    for (const [what, args, expected] of cases) {
      await scenario.step(t, what, async () => {
        const { code, stdout, stderr } = await run("work", ["--queue", scenario.queue, ...args], {
          AMQP_URL: scenario.url,
        });
        const lines = stderr.trim().split("\n");
        assert.equal(code, 2, stderr);
        assert.equal(lines.length, 1, `one line: ${stderr}`);
        assert.match(lines[0]!, expected);
        assert.equal(stdout, "");
      });
    }
    await scenario.step(t, "no worker consumed the task", async () => {
      const { messageCount, consumerCount } = await within(
        scenario.channel.checkQueue(scenario.queue),
        5_000,
        "the queue's counts",
      );
      assert.equal(messageCount, 1);
      assert.equal(consumerCount, 0);
    });
    scenario.pass();
  },
});

/** The metrics an OTLP/HTTP JSON collector received: the last value of each name and task name. */
function otlpCollector() {
  const values = new Map<string, number>();
  let waiters: { key: string; resolve: () => void }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
    const body = await r.json();
    if (new URL(r.url).pathname === "/v1/metrics") {
      for (const resource of body.resourceMetrics ?? []) {
        for (const scope of resource.scopeMetrics ?? []) {
          for (const metric of scope.metrics ?? []) {
            const points = metric.sum?.dataPoints ?? metric.histogram?.dataPoints ??
              metric.gauge?.dataPoints ?? [];
            for (const point of points) {
              const name = point.attributes?.find((a: { key: string }) => a.key === "name")
                ?.value?.stringValue;
              const number = Number(point.asInt ?? point.asDouble ?? point.count);
              values.set(`${metric.name}${name === undefined ? "" : `{${name}}`}`, number);
            }
          }
        }
      }
    }
    waiters = waiters.filter(({ key, resolve }) => !values.has(key) || (resolve(), false));
    return Response.json({});
  });
  /** Resolves once a value of `key` has arrived. */
  const received = (key: string) =>
    within(
      values.has(key) ? Promise.resolve() : new Promise<void>((resolve) => {
        waiters.push({ key, resolve });
      }),
      20_000,
      `${key} at the collector`,
    );
  return { url: `http://127.0.0.1:${server.addr.port}`, values, received, server };
}

Deno.test({
  name: "with Deno's OpenTelemetry on, the worker sends the same measures as OTel metrics",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const collector = otlpCollector();
    try {
      const worker = await scenario.startWorker("otel", ["--time-scale", "0.01"], {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        // Every 200 ms rather than every minute: the gauges are read while the worker runs.
        OTEL_METRIC_EXPORT_INTERVAL: "200",
      });
      await scenario.step(t, "5 tasks complete, the worker stops and flushes", async () => {
        for (let seq = 1; seq <= 5; seq++) {
          await scenario.publish(createTask({}, { seq, complexity: 1 }));
        }
        await scenario.waitForCompleted(5);
        await collector.received("tareas.worker.prefetch");
        worker.kill("SIGTERM");
        assert.equal((await worker.exit()).code, 0);
      });
      await scenario.step(t, "the collector got the counts and the gauges", () => {
        const values = collector.values;
        assert.equal(values.get("tareas.tasks.completed{default}"), 5, JSON.stringify([...values]));
        assert.equal(values.get("tareas.task.duration{default}"), 5);
        assert.equal(values.get("tareas.worker.prefetch"), 1);
      });
      scenario.pass();
    } finally {
      await collector.server.shutdown();
    }
  },
});

Deno.test({
  name:
    "deno task dashboard serves the queue's own figures on /metrics: ready messages, then the " +
    "worker that took them, up",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await scenario.produce(["--count", "3", "--min", "0", "--max", "0"]);
    const { url } = await spawnDashboard(scenario);
    const metrics = new URL("/metrics", url).href;
    const queue = { queue: scenario.queue };
    // The dashboard reads the counts every second: scrape until they show.
    const until = (what: string, ok: (samples: Sample[]) => boolean) =>
      within(
        (async () => {
          while (!ok(await scrape(metrics))) {
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        })(),
        20_000,
        what,
      );
    await until("3 ready messages", (s) => value(s, "tareas_queue_ready_messages", queue) === 3);
    await scenario.startWorker("m1", ["--time-scale", "0"]);
    await scenario.waitForCompleted(3);
    await until(
      "worker m1 up and nothing ready",
      (s) =>
        value(s, "tareas_queue_worker_up", { worker: "m1" }) === 1 &&
        value(s, "tareas_queue_ready_messages", queue) === 0 &&
        value(s, "tareas_queue_consumers", queue) === 1,
    );
    scenario.pass();
  },
});
