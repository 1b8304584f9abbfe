/**
 * `deno task demo`: the whole story in one command. Finds a broker (or starts a private one, or
 * with `--cluster` a private 3-node cluster), starts three workers, publishes ten tasks, SIGKILLs
 * a worker in the middle of a task (and with `--cluster` the queue leader's node), waits until
 * every task is done, prints who did what, and stops the other workers gracefully.
 * @module
 */
import amqp from "../lib/deps/amqplib.ts";
import { onStopSignals, runMain } from "../lib/cli/main.ts";
import { type DemoConfig, parseDemoArgs } from "../lib/cli/tools_config.ts";
import { type Dashboard, startDashboard } from "../lib/operate/dashboard/mod.ts";
import { TareasError } from "../lib/core/errors.ts";
import { eventsExchange, type TareasEvent } from "../lib/core/events.ts";
import { renderSummary } from "../lib/observe/render/summary.ts";
import { renderTimelineSvg } from "../lib/observe/render/timeline_svg.ts";
import { renderTimelineText } from "../lib/observe/render/timeline_text.ts";
import { printable } from "../lib/core/text.ts";
import { buildTimeline, summarize } from "../lib/observe/replay.ts";
import { deadQueue } from "../lib/core/topology.ts";
import { parseBrokerUrls, redactUrl } from "../lib/core/url.ts";
import { watchQueue } from "../lib/observe/watch.ts";
import { findOrStartBroker } from "../lib/operate/local_broker.ts";
import { type Cluster, startCluster } from "../lib/operate/local_cluster.ts";

const HELP = `Usage: deno task demo [flags]

Runs the original fault-tolerance story end to end: uses the broker at AMQP_URL (default
amqp://guest:guest@127.0.0.1:5672) or, if none answers and rabbitmq-server is installed, a private
node it starts and stops; starts --workers workers on a queue of its own (deleted at the end),
publishes --count tasks of 1-5 s, SIGKILLs one worker in the middle of its task, waits until every
task has completed, prints the per-worker summary and timeline, and stops the remaining workers
with SIGTERM. Ctrl-C stops the workers and any private broker cleanly; a second one at once.

Flags:
  --workers N          workers to start (default 3)
  --count N            tasks to publish (default 10)
  --time-scale F       seconds of work per unit of complexity (default 1)
  --timeline FILE.svg  also write the timeline as an SVG picture
  --dashboard          also serve the live dashboard of the demo's queue (prints its address)
  --cluster            run it on a private 3-node RabbitMQ cluster (needs rabbitmq-server) and
                       SIGKILL the node leading the queue too
  --queue NAME         queue for the demo, deleted at the end (default tareas_demo_<random>)
  --heartbeat S        AMQP heartbeat of the workers in seconds (default 15)
  -h, --help           show this help

Exit codes: 0 every task completed once the worker was killed; 1 the story did not complete or
was stopped; 2 bad flag or no broker to be had.

Examples:
  deno task demo
  deno task demo --time-scale 0.2 --timeline demo.svg
  deno task demo --cluster --dashboard`;

const ROOT = new URL("../", import.meta.url).pathname;

/** A broker for the story, stopped at the end if the demo started it. */
interface StoryBroker extends AsyncDisposable {
  url: string;
  describe: string;
  cluster?: Cluster;
}

async function demo(config: DemoConfig): Promise<number> {
  const stop = new AbortController();
  const children = new Map<string, Deno.ChildProcess>();
  const signals = onStopSignals(() => {
    say("Ctrl-C: stopping the workers, then the broker");
    stop.abort();
  }, () => {
    for (const child of children.values()) killQuietly(child, "SIGKILL");
    Deno.exit(1); // Private nodes are killed by their unload handlers.
  });
  try {
    await using broker = await openBroker(config);
    say(`broker: ${broker.describe}`);
    return await story(config, broker, children, stop.signal);
  } finally {
    signals.remove();
  }
}

async function openBroker(config: DemoConfig): Promise<StoryBroker> {
  if (config.cluster) {
    say("starting a private 3-node RabbitMQ cluster (about 20 s)");
    const cluster = await startCluster();
    return {
      url: cluster.url,
      describe: `${redactUrl(cluster.url)} (private 3-node cluster started for the demo)`,
      cluster,
      [Symbol.asyncDispose]: () => cluster.stop(),
    };
  }
  const broker = await findOrStartBroker({ url: config.url });
  const started = broker.node ? " (private node started for the demo)" : "";
  return {
    url: broker.url,
    describe: `${redactUrl(broker.url)}${started}`,
    [Symbol.asyncDispose]: () => broker.close(),
  };
}

async function story(
  config: DemoConfig,
  broker: StoryBroker,
  children: Map<string, Deno.ChildProcess>,
  stopped: AbortSignal,
): Promise<number> {
  const { queue, workers, count, timeScale } = config;
  // Durable: on a cluster, the node this connection is on may be the one killed.
  await using watcher = await watchQueue({
    url: broker.url,
    queue,
    durable: true,
    signal: stopped,
  });
  const events: TareasEvent[] = [];
  let changed = Promise.withResolvers<void>();
  let killedWorker: string | undefined;
  let killedNode: string | undefined;
  const onEvent = (event: TareasEvent) => {
    events.push(event);
    narrate(event);
    const completions = events.filter((e) => e.type === "task.completed").length;
    if (event.type === "task.started" && !killedWorker && completions > 0) {
      // Kill this worker halfway into its task (every task lasts at least 1 s × time-scale).
      killedWorker = event.worker;
      setTimeout(() => {
        say(`✗ SIGKILL ${printable(event.worker)} in the middle of task #${event.seq}`);
        children.get(event.worker)?.kill("SIGKILL");
      }, 500 * timeScale);
    }
    if (broker.cluster && killedWorker && !killedNode && completions >= 3) {
      killedNode = "…";
      killLeader(broker.cluster, queue).then((node) => killedNode = node);
    }
  };
  // Read all along, so that the kill lands in the middle of a task; a state comes every second.
  const following = (async () => {
    for await (const update of watcher) {
      if (update.kind === "event") onEvent(update.event);
      changed.resolve();
      changed = Promise.withResolvers();
    }
  })();
  following.catch(() => {}); // until() reports it
  const until = async (done: () => boolean, what: string, ms: number) => {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (Date.now() > deadline) throw new TareasError(`Demo timed out waiting for ${what}`);
      // The watcher closes only at Ctrl-C; a connection that gives up rejects.
      const open = await Promise.race([
        changed.promise.then(() => true),
        following.then(() => false),
      ]);
      if (!open) throw new TareasError("Stopped by Ctrl-C before the end");
    }
  };

  let dashboard: Dashboard | undefined;
  try {
    for (let i = 1; i <= workers; i++) {
      const name = `worker-${i}`;
      children.set(
        name,
        spawn("work", broker.url, [
          ...["--queue", queue, "--name", name, "--time-scale", String(timeScale)],
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
    const producer = await spawn("produce", broker.url, ["--queue", queue, "--count", `${count}`])
      .status;
    if (!producer.success) throw new TareasError(`Producer exited ${producer.code}`);

    const completed = () =>
      summarize(events, new Set(events.flatMap((e) => "taskId" in e ? [e.taskId] : []))).completed;
    await until(
      () => completed() >= count,
      `${count} tasks to complete`,
      60_000 + count * 5_000 * timeScale,
    );
  } finally {
    await dashboard?.close();
    // SIGTERM: each worker finishes the task in hand, acks it and exits.
    for (const [name, child] of children) {
      if (name === killedWorker) continue;
      killQuietly(child, "SIGTERM");
      const status = await child.status;
      say(`${name} stopped gracefully (exit ${status.code})`);
    }
    for (const child of children.values()) await child.status;
    await clean(broker.url, queue);
  }

  const ids = new Set(events.flatMap((e) => "taskId" in e ? [e.taskId] : []));
  const summary = summarize(events, ids);
  const timeline = buildTimeline(events, killedWorker ? { killed: [killedWorker] } : {});
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
  // On a cluster, tasks in flight on the lost node's connections may run twice (reported above).
  const once = broker.cluster !== undefined || summary.duplicates.length === 0;
  const ok = summary.completed === count && once && summary.redelivered.length > 0;
  say(
    ok
      ? `all ${count} tasks completed${broker.cluster ? "" : " exactly once"}, including the one ` +
        `the killed worker held${killedNode ? `, after losing node ${killedNode}` : ""}`
      : "the story did not go as expected: see above",
  );
  return ok ? 0 : 1;
}

/** SIGKILLs the node leading `queue`; resolves with its name. */
async function killLeader(cluster: Cluster, queue: string): Promise<string> {
  const leader = await cluster.leader(queue);
  const name = cluster.nodes[leader]!.name;
  say(`✗ SIGKILL node ${name}, the leader of the queue`);
  await cluster.kill(leader);
  return name;
}

/** Runs a deno.json task's command (its own narrow permissions) with more arguments. */
function spawn(task: "work" | "produce", url: string, args: string[]): Deno.ChildProcess {
  const [, ...command] = TASKS[task].trim().split(/\s+/); // Drop the leading `deno`.
  const script = command.pop()!;
  return new Deno.Command(Deno.execPath(), {
    args: [...command, `${ROOT}${script}`, ...args],
    env: { AMQP_URL: url, LOG_LEVEL: "warning" },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

const TASKS = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks as Record<
  "work" | "produce",
  string
>;

/** Deletes the demo's queue, dead-letter queue and events exchange, on any node still up. */
async function clean(url: string, queue: string): Promise<void> {
  for (const { protocol, hostname, port, username, password, vhost } of parseBrokerUrls(url)) {
    try {
      const connection = await amqp.connect({
        protocol,
        hostname,
        port,
        username,
        password,
        vhost,
      });
      try {
        const channel = await connection.createChannel();
        for (const name of [queue, deadQueue(queue)]) await channel.deleteQueue(name);
        await channel.deleteExchange(eventsExchange(queue));
      } finally {
        await connection.close();
      }
      return;
    } catch {
      // This node is down: try the next.
    }
  }
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

function killQuietly(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

function narrate(event: TareasEvent): void {
  const worker = printable(event.worker);
  switch (event.type) {
    case "worker.online":
      return say(`${worker} online${event.node ? ` (node ${printable(event.node)})` : ""}`);
    case "task.started":
      return say(
        `${worker} ▶ task #${event.seq}` +
          (event.attempt > 1
            ? ` (attempt ${event.attempt}${event.redelivered ? ", redelivered" : ""})`
            : ""),
      );
    case "task.completed":
      return say(
        `${worker} ✓ task #${event.seq} in ${((event.durationMs ?? 0) / 1000).toFixed(1)} s`,
      );
    case "worker.offline":
      return say(`${worker} offline`);
    case "worker.status":
      return;
    default:
      return say(`${worker} ${event.type} task #${event.seq}: ${printable(event.reason ?? "")}`);
  }
}

function say(line: string): void {
  console.log(`[demo] ${line}`);
}

if (import.meta.main) {
  await runMain("demo", {
    parse: () => parseDemoArgs(Deno.args),
    help: HELP,
    run: demo,
    logLevel: "warning",
  });
}
