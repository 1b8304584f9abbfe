/**
 * `deno task status`: the state of a queue and its workers on one screen, over AMQP only (no
 * management plugin): ready and dead-lettered counts and consumers from passive declares, the
 * workers, their tasks in hand, the tasks they run with their progress and their completion rate
 * from the events they publish (drawn by `lib/cli/status_text.ts`).
 * @module
 */
import { onStopSignals, runMain } from "../lib/cli/main.ts";
import {
  ENVIRONMENT_HELP,
  EXIT_CODES_HELP,
  parseStatusArgs,
  type StatusConfig,
} from "../lib/cli/tools_config.ts";
import { STATUS_INTERVAL_MS } from "../lib/core/events.ts";
import { type MonitorSnapshot, QueueMonitor } from "../lib/observe/monitor.ts";
import { watchQueue } from "../lib/observe/watch.ts";
import { renderStatus } from "../lib/cli/status_text.ts";
import { log } from "../lib/core/log.ts";
import { printable } from "../lib/core/text.ts";
import { DEFAULT_QUEUE } from "../lib/core/topology.ts";

const HELP = `Usage: deno task status [flags]

Shows a queue and its workers: messages ready, messages held unacked by workers, consumers,
messages in the dead-letter queue, each worker with its state (online; lost: it stopped reporting
without saying goodbye, killed or cut off; offline), tasks in hand, completions and failures, and
the completion rate over the last minute. Under each worker, the tasks it is running and the
progress each last reported (task #3 40%, or a handler's progress object as short JSON), as
far as it heard their events: --watch those that start or report once it runs, a snapshot those
that did while it listened. Uses AMQP only: counts come from passive declares, workers from the
events they publish (a worker.status every ${STATUS_INTERVAL_MS / 1000} s). A
snapshot listens until every consumer of the queue has reported, at most ${
  (STATUS_INTERVAL_MS * 1.25) / 1000
} s.
Declares nothing: it only listens through a temporary queue of its own.

Flags:
  --queue NAME   queue to show (default ${DEFAULT_QUEUE})
  --heartbeat S  AMQP heartbeat in seconds, 0 disables (default 15)
  --watch        show a new snapshot every second until interrupted (redrawn in place on a
                 terminal, one after the other otherwise); a queue that does not exist yet
                 is waited for ("waiting for queue NAME to be declared")
  --json         print one snapshot as JSON
  -h, --help     show this help

${ENVIRONMENT_HELP}

${EXIT_CODES_HELP}
  (status exits 2 when the queue does not exist, was not set up by tareas, or a permission is
  missing; status --watch waits for a queue that does not exist)

Examples:
  deno task status --watch
  deno task status --json --queue tareas_distribuidas`;

/** One snapshot of a queue and its workers: what `status --json` prints. */
export type StatusSnapshot = MonitorSnapshot;

/**
 * How often a snapshot reads the counts while it listens: it ends at the first update after every
 * consumer has reported, or after 1.25 status intervals (every live worker reports within one).
 */
const SNAPSHOT_TICK_MS = STATUS_INTERVAL_MS / 4;
const SNAPSHOT_LISTEN_MS = STATUS_INTERVAL_MS * 1.25;

function status(config: StatusConfig): Promise<number> {
  return config.watch ? watchStatus(config) : snapshot(config);
}

/** Prints one snapshot, once every consumer has reported (see {@linkcode SNAPSHOT_TICK_MS}). */
async function snapshot(config: StatusConfig): Promise<number> {
  const logger = log("status");
  await using watcher = await watchQueue({
    url: config.url,
    queue: config.queue,
    heartbeat: config.heartbeat,
    name: "tareas status",
    countsEveryMs: SNAPSHOT_TICK_MS,
  });
  // The queue first: a mistyped name is one line at once, and nothing listens for it.
  if (watcher.state.error) throw watcher.state.error;
  const monitor = new QueueMonitor(config.queue);
  if (!watcher.state.listening) {
    // No events exchange: no tareas worker has ever run on this queue.
    logger.debug("Snapshot without listening: the events exchange does not exist");
    monitor.setCounts(watcher.state.counts!);
  } else {
    const started = performance.now();
    for await (const update of watcher) {
      if (update.kind === "event") monitor.observe(update.event);
      else if (update.state.error) throw update.state.error; // deleted meanwhile
      else monitor.setCounts(update.state.counts!);
      if (
        monitor.reportedOnline() >= monitor.counts.consumers ||
        performance.now() - started >= SNAPSHOT_LISTEN_MS
      ) break;
    }
    logger.debug(
      "Snapshot after listening {ms} ms: {reported} of {consumers} consumers reported",
      {
        ms: Math.round(performance.now() - started),
        reported: monitor.reportedOnline(),
        consumers: monitor.counts.consumers,
      },
    );
  }
  const shown = monitor.snapshot();
  console.log(config.json ? JSON.stringify(shown, null, 2) : renderStatus(shown));
  return 0;
}

/**
 * Prints a snapshot at every state the watcher reads (every second) until a first SIGINT or
 * SIGTERM; another one, a moment later, exits at once. A queue that does not exist is waited for.
 */
async function watchStatus(config: StatusConfig): Promise<number> {
  const stop = new AbortController();
  const signals = onStopSignals(() => stop.abort(), () => Deno.exit(0));
  try {
    await using watcher = await watchQueue({
      url: config.url,
      queue: config.queue,
      heartbeat: config.heartbeat,
      name: "tareas status",
      signal: stop.signal,
    });
    // A queue not declared yet (or deleted while watched: a migration) is waited for. Any other
    // problem ends the command at first; later, it is shown until it goes away.
    if (watcher.state.error && watcher.state.declared !== false) throw watcher.state.error;
    const monitor = new QueueMonitor(config.queue);
    const terminal = Deno.stdout.isTerminal();
    const encoder = new TextEncoder();
    for await (const update of watcher) {
      if (update.kind === "event") {
        monitor.observe(update.event);
        continue;
      }
      const { declared, counts, error } = update.state;
      if (counts) monitor.setCounts(counts);
      const text = declared === false
        ? `waiting for queue ${printable(config.queue)} to be declared`
        : error
        ? `queue ${printable(config.queue)}: ${printable(error.message)}`
        : renderStatus(monitor.snapshot());
      // Clear-screen escapes only where a terminal interprets them; plain snapshots elsewhere.
      const out = terminal ? `\x1b[H\x1b[2J${text}\n(Ctrl-C to quit)\n` : `${text}\n\n`;
      await Deno.stdout.write(encoder.encode(out));
    }
  } finally {
    signals.remove();
  }
  return 0;
}

if (import.meta.main) {
  await runMain("status", {
    parse: () => parseStatusArgs(Deno.args),
    help: HELP,
    run: status,
    logLevel: "warning",
  });
}
