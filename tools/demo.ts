/**
 * `deno task demo`: the whole story in one command. Finds a broker (or starts a private one),
 * starts three workers, publishes ten tasks, SIGKILLs a worker in the middle of a task, waits until
 * every task is done, prints who did what, and stops the other workers gracefully.
 * @module
 */
import amqp from "amqplib";
import { findOrStartBroker } from "../testing/broker.ts";
import { runMain } from "../lib/cli.ts";
import { type Dashboard, startDashboard } from "../lib/dashboard/mod.ts";
import { type DemoConfig, parseDemoArgs } from "../lib/config.ts";
import { redactUrl } from "../lib/url.ts";
import { TareasError } from "../lib/errors.ts";
import { eventsExchange, subscribeEvents, type TareasEvent } from "../lib/events.ts";
import { renderSummary } from "../lib/render/summary.ts";
import { renderTimelineSvg } from "../lib/render/timeline_svg.ts";
import { renderTimelineText } from "../lib/render/timeline_text.ts";
import { summarize } from "../lib/summary.ts";
import { buildTimeline } from "../lib/timeline.ts";
import { deadQueue } from "../lib/topology.ts";

const HELP = `Usage: deno task demo [flags]

Runs the original fault-tolerance story end to end: uses the broker at AMQP_URL (default
amqp://guest:guest@127.0.0.1:5672) or, if none answers and rabbitmq-server is installed, a private
node it starts and stops; starts --workers workers on the queue --queue (deleted first and at the
end), publishes --count tasks of 1-5 s, SIGKILLs one worker in the middle of its task, waits until
every task has completed, prints the per-worker summary and timeline, and stops the remaining
workers with SIGTERM.

Flags:
  --queue NAME         queue for the demo, deleted before and after (default tareas_demo)
  --workers N          workers to start (default 3)
  --count N            tasks to publish (default 10)
  --time-scale F       seconds of work per unit of complexity (default 1)
  --timeline FILE.svg  also write the timeline as an SVG picture
  --dashboard          also serve the live dashboard of the demo's queue (prints its address)
  --heartbeat S        AMQP heartbeat of the workers in seconds (default 15)
  -h, --help           show this help

Exit codes: 0 every task completed once the worker was killed; 1 the story did not complete;
2 bad flag or no broker to be had.

Examples:
  deno task demo
  deno task demo --time-scale 0.2 --timeline demo.svg`;

const ROOT = new URL("../", import.meta.url).pathname;

async function demo(config: DemoConfig & { dashboard: boolean }): Promise<number> {
  const { queue, workers, count, timeScale } = config;
  await using broker = await findOrStartBroker({ url: config.url });
  say(
    `broker: ${redactUrl(broker.url)}${broker.node ? " (private node started for the demo)" : ""}`,
  );
  const connection = await amqp.connect(broker.url);
  const channel = await connection.createChannel();
  channel.on("error", (error: Error) => say(`channel error: ${error.message}`));
  const clean = async () => {
    for (const name of [queue, deadQueue(queue)]) await channel.deleteQueue(name);
    await channel.deleteExchange(eventsExchange(queue));
  };
  await clean();

  const events: TareasEvent[] = [];
  const waiters: (() => void)[] = [];
  const children = new Map<string, Deno.ChildProcess>();
  let killed: string | undefined;
  await subscribeEvents(channel, queue, (event) => {
    events.push(event);
    narrate(event);
    const warmedUp = events.some((e) => e.type === "task.completed");
    if (event.type === "task.started" && !killed && warmedUp) {
      // Kill this worker halfway into its task (every task lasts at least 1 s × time-scale).
      killed = event.worker;
      setTimeout(() => {
        say(`✗ SIGKILL ${event.worker} in the middle of task #${event.seq}`);
        children.get(event.worker)?.kill("SIGKILL");
      }, 500 * timeScale);
    }
    for (const waiter of waiters.splice(0)) waiter();
  });
  const until = async (done: () => boolean, what: string, ms: number) => {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) throw new TareasError(`Demo timed out waiting for ${what}`, 1);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 1000);
      });
    }
  };

  let dashboard: Dashboard | undefined;
  const env = { AMQP_URL: broker.url, LOG_LEVEL: "warning" };
  const spawn = (script: string, extra: string[], stdout: "null" | "inherit" = "null") =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}${script}`, "--queue", queue, ...extra],
      env,
      stdin: "null",
      stdout,
      stderr: "inherit",
    }).spawn();
  try {
    for (let i = 1; i <= workers; i++) {
      const name = `worker-${i}`;
      children.set(
        name,
        spawn("worker.ts", [
          ...["--name", name, "--time-scale", String(timeScale)],
          ...["--heartbeat", String(config.heartbeat)],
        ]),
      );
    }
    await until(
      () =>
        new Set(events.filter((e) => e.type === "worker.online").map((e) => e.worker)).size >=
          workers,
      "the workers to come online",
      30_000,
    );
    if (config.dashboard) {
      dashboard = await startDemoDashboard(broker.url, queue);
      say(`dashboard: ${dashboard.url}#token=${dashboard.token}`);
    }
    say(`publishing ${count} tasks of 1-5 s${timeScale === 1 ? "" : ` (× ${timeScale})`}`);
    const producer = await spawn("producer.ts", ["--count", String(count)]).status;
    if (!producer.success) throw new TareasError(`Producer exited ${producer.code}`, 1);

    const completed = () =>
      summarize(events, new Set(events.flatMap((e) => "taskId" in e ? [e.taskId] : []))).completed;
    await until(
      () => completed() >= count,
      `${count} tasks to complete`,
      60_000 + count * 5_000 * timeScale,
    );

    for (const [name, child] of children) {
      if (name === killed) continue;
      child.kill("SIGTERM");
      const status = await child.status;
      say(`${name} stopped gracefully (exit ${status.code})`);
    }
  } finally {
    await dashboard?.close();
    for (const child of children.values()) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
    }
    await clean().catch(() => {});
    await connection.close();
  }

  const ids = new Set(events.flatMap((e) => "taskId" in e ? [e.taskId] : []));
  const summary = summarize(events, ids);
  const timeline = buildTimeline(events, killed ? { killed: [killed] } : {});
  console.log("");
  console.log(renderSummary(summary));
  console.log("");
  console.log(renderTimelineText(timeline, { color: Deno.stdout.isTerminal() }));
  if (config.timeline) {
    await Deno.writeTextFile(
      config.timeline,
      renderTimelineSvg(timeline, { title: "tareas demo" }),
    );
    say(`timeline written to ${config.timeline}`);
  }
  const ok = summary.completed === count && summary.duplicates.length === 0 &&
    summary.redelivered.length > 0;
  say(
    ok
      ? `all ${count} tasks completed exactly once, including the one the killed worker held`
      : "the story did not go as expected: see above",
  );
  return ok ? 0 : 1;
}

/** The dashboard on port 8080, or on any free port when 8080 is taken. */
async function startDemoDashboard(url: string, queue: string): Promise<Dashboard> {
  try {
    return await startDashboard({ url, queue, port: 8080 });
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    return await startDashboard({ url, queue, port: 0 });
  }
}

function narrate(event: TareasEvent): void {
  switch (event.type) {
    case "worker.online":
      return say(`${event.worker} online`);
    case "task.started":
      return say(
        `${event.worker} ▶ task #${event.seq}` +
          (event.attempt > 1
            ? ` (attempt ${event.attempt}${event.redelivered ? ", redelivered" : ""})`
            : ""),
      );
    case "task.completed":
      return say(
        `${event.worker} ✓ task #${event.seq} in ${((event.durationMs ?? 0) / 1000).toFixed(1)} s`,
      );
    case "worker.offline":
      return say(`${event.worker} offline`);
    case "worker.status":
      return;
    default:
      return say(`${event.worker} ${event.type} task #${event.seq}: ${event.reason ?? ""}`);
  }
}

function say(line: string): void {
  console.log(`[demo] ${line}`);
}

if (import.meta.main) {
  await runMain("demo", {
    parse: () => {
      const config = parseDemoArgs(Deno.args.filter((arg) => arg !== "--dashboard"));
      return config === "help"
        ? config
        : { ...config, dashboard: Deno.args.includes("--dashboard") };
    },
    help: HELP,
    run: demo,
    logLevel: "warning",
  });
}
