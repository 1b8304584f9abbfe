/**
 * `deno task status`: the state of a queue and its workers on one screen, over AMQP only (no
 * management plugin): ready and dead-lettered counts and consumers from the broker, the workers,
 * their tasks in hand and their completion rate from the `worker.status` events they publish.
 * @module
 */
import type { Channel } from "amqplib";
import { runMain } from "../lib/cli.ts";
import {
  ENVIRONMENT_HELP,
  EXIT_CODES_HELP,
  parseStatusArgs,
  type StatusConfig,
} from "../lib/config.ts";
import { openConnection } from "../lib/connection.ts";
import { UsageError } from "../lib/errors.ts";
import { STATUS_INTERVAL_MS, subscribeEvents, type WorkerEvent } from "../lib/events.ts";
import { deadQueue, DEFAULT_QUEUE } from "../lib/topology.ts";

const HELP = `Usage: deno task status [flags]

Shows a queue and its workers: messages ready, messages held unacked by workers, consumers,
messages in the dead-letter queue, each worker seen online with its tasks in hand and completions,
and the completion rate over the last minute. Uses AMQP only: counts come from a passive queue
declare, workers from the worker.status events they publish every ${
  STATUS_INTERVAL_MS / 1000
} s, so one
snapshot listens for ${(STATUS_INTERVAL_MS * 1.5) / 1000} s first. Declares nothing.

Flags:
  --queue NAME   queue to show (default ${DEFAULT_QUEUE})
  --heartbeat S  AMQP heartbeat in seconds, 0 disables (default 15)
  --watch        redraw every second until interrupted
  --json         print one snapshot as JSON
  -h, --help     show this help

${ENVIRONMENT_HELP}

${EXIT_CODES_HELP}
  (status exits 2 when the queue does not exist)

Examples:
  deno task status --watch
  deno task status --json --queue tareas_distribuidas`;

/** One snapshot of a queue and its workers. */
export interface StatusSnapshot {
  queue: string;
  at: string;
  /** Messages ready for delivery. */
  ready: number;
  /** Messages delivered and not yet acked, as reported by the workers seen. */
  unacked: number;
  /** Consumers attached to the queue. */
  consumers: number;
  /** Messages in the dead-letter queue. */
  dead: number;
  /** Tasks completed in the last minute by the workers seen, per second. */
  ratePerSecond: number;
  workers: {
    name: string;
    state: "online" | "offline" | "silent";
    lastSeen: string;
    inHand: number;
    completed: number;
    failed: number;
  }[];
}

async function status(config: StatusConfig): Promise<number> {
  const { queue } = config;
  const workers = new Map<string, WorkerEvent>();
  let channel: Channel | undefined;
  await using _connection = await openConnection({
    url: config.url,
    heartbeat: config.heartbeat,
    name: "tareas status",
    setup: async (model) => {
      const events = await model.createChannel();
      events.on("error", () => {});
      await subscribeEvents(events, queue, (event) => {
        if (event.type.startsWith("worker.")) workers.set(event.worker, event as WorkerEvent);
      }, { pattern: "worker.*" });
      channel = await model.createChannel();
      channel.on("error", () => {});
    },
  });
  const snapshot = async (): Promise<StatusSnapshot> => {
    const counts = async (name: string) => {
      try {
        return await channel!.checkQueue(name);
      } catch {
        throw new UsageError(`Queue "${name}" does not exist: nothing has declared it yet`);
      }
    };
    const main = await counts(queue);
    const dead = await counts(deadQueue(queue));
    const now = Date.now();
    const seen = [...workers.values()].map((event) => ({
      name: event.worker,
      state: event.type === "worker.offline"
        ? "offline" as const
        : now - Date.parse(event.at) > 3 * STATUS_INTERVAL_MS
        ? "silent" as const
        : "online" as const,
      lastSeen: event.at,
      inHand: event.type === "worker.offline" ? 0 : event.inHand ?? 0,
      completed: event.completed ?? 0,
      failed: event.failed ?? 0,
      lastMinute: event.lastMinute ?? 0,
    }));
    const live = seen.filter((worker) => worker.state === "online");
    return {
      queue,
      at: new Date(now).toISOString(),
      ready: main.messageCount,
      unacked: live.reduce((sum, worker) => sum + worker.inHand, 0),
      consumers: main.consumerCount,
      dead: dead.messageCount,
      ratePerSecond: live.reduce((sum, worker) => sum + worker.lastMinute, 0) / 60,
      workers: seen.map(({ lastMinute: _, ...worker }) => worker),
    };
  };
  // Every live worker reports within one interval: listen that long before the first snapshot.
  await new Promise((resolve) => setTimeout(resolve, STATUS_INTERVAL_MS * 1.5));
  if (config.json) {
    console.log(JSON.stringify(await snapshot(), null, 2));
    return 0;
  }
  if (!config.watch) {
    console.log(render(await snapshot()));
    return 0;
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    while (!stop.signal.aborted) {
      const text = render(await snapshot());
      Deno.stdout.writeSync(new TextEncoder().encode(`\x1b[H\x1b[2J${text}\n(Ctrl-C to quit)\n`));
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 1000);
        stop.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  return 0;
}

/** Renders a snapshot as a screen of text. */
function render(snapshot: StatusSnapshot): string {
  const lines = [
    `queue ${snapshot.queue}   ${snapshot.at}`,
    `  ready ${snapshot.ready}   unacked ${snapshot.unacked}   consumers ${snapshot.consumers}   ` +
    `dead-lettered ${snapshot.dead}   rate ${snapshot.ratePerSecond.toFixed(2)}/s (last minute)`,
    "",
  ];
  if (snapshot.workers.length === 0) {
    lines.push("  no worker seen (workers report every few seconds)");
  } else {
    const width = Math.max(6, ...snapshot.workers.map((w) => w.name.length));
    lines.push(`  ${"worker".padEnd(width)}  state    in hand  completed  failed  last seen`);
    for (const w of snapshot.workers) {
      lines.push(
        `  ${w.name.padEnd(width)}  ${w.state.padEnd(7)}  ${String(w.inHand).padStart(7)}  ` +
          `${String(w.completed).padStart(9)}  ${String(w.failed).padStart(6)}  ${w.lastSeen}`,
      );
    }
  }
  return lines.join("\n");
}

if (import.meta.main) {
  await runMain("status", {
    parse: () => parseStatusArgs(Deno.args),
    help: HELP,
    run: status,
    logLevel: "warning",
  });
}
