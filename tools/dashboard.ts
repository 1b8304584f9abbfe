/**
 * `deno task dashboard`: the live dashboard of a queue in the browser. See `lib/operate/dashboard/mod.ts`.
 * @module
 */
import { delay } from "../lib/core/async.ts";
import { onStopSignals, runMain } from "../lib/cli/main.ts";
import {
  type DashboardConfig,
  ENVIRONMENT_HELP,
  parseDashboardArgs,
} from "../lib/cli/tools_config.ts";
import { startDashboard } from "../lib/operate/dashboard/mod.ts";
import { UsageError } from "../lib/core/errors.ts";
import { DEFAULT_QUEUE } from "../lib/core/topology.ts";

const HELP = `Usage: deno task dashboard [flags]

Serves a live page of a queue: its counts and completion rate, its workers (online, lost,
offline), a per-worker timeline scrolling with time, the last failures, and the dead letters with
buttons to requeue or purge them. Updates are pushed to the page from the queue's events
exchange (Server-Sent Events); no management plugin needed.

The requeue and purge buttons need the token printed at start-up (or given with --token); the
printed address carries it after # (never sent over the network by the browser). Listens on
127.0.0.1 only unless --host says otherwise.

Flags:
  --queue NAME   queue to show (default ${DEFAULT_QUEUE})
  --port N       port to listen on, 0 for any free one (default 8080)
  --host ADDR    address to listen on (default 127.0.0.1)
  --token T      token for the actions (default: a random one)
  --heartbeat S  AMQP heartbeat in seconds, 0 disables (default 15)
  -h, --help     show this help

${ENVIRONMENT_HELP}

Exit codes:
  0  stopped by SIGINT or SIGTERM
  1  runtime failure (broker unreachable)
  2  usage or configuration error (bad flag, port in use, queue missing or not set up by tareas,
     credentials refused)

Examples:
  deno task dashboard
  deno task dashboard --queue tareas_distribuidas --port 9000`;

async function dashboard(config: DashboardConfig): Promise<number> {
  let server;
  try {
    server = await startDashboard({
      url: config.url,
      queue: config.queue,
      host: config.host,
      port: config.port,
      heartbeat: config.heartbeat,
      ...(config.token === undefined ? {} : { token: config.token }),
    });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new UsageError(
        `Cannot listen on ${config.host}:${config.port}: the port is in use; choose another --port`,
        { cause: error },
      );
    }
    throw error;
  }
  const stopped = Promise.withResolvers<void>();
  // The first SIGINT or SIGTERM stops it; another one, a moment later, exits at once.
  const signals = onStopSignals(() => stopped.resolve(), () => Deno.exit(0));
  try {
    console.log(`dashboard: ${server.url}#token=${server.token}`);
    console.log("(the requeue and purge buttons need the token after #token=; Ctrl-C to stop)");
    if (!/^(127\.|localhost$|::1$|\[::1\]$)/.test(config.host)) {
      console.log(
        `warning: listening on ${config.host}, reachable from other machines; anyone who can ` +
          "reach it sees the queue and its payloads",
      );
    }
    await stopped.promise;
  } finally {
    // Nothing in progress (an action, a broker that stopped answering) may hold the exit: the
    // connections get a moment to close cleanly, then the process ends anyway.
    const grace = new AbortController();
    await Promise.race([server.close(), delay(STOP_GRACE_MS, grace.signal).catch(() => {})]);
    grace.abort();
    signals.remove();
  }
  return 0;
}

/** How long a stopping dashboard waits for its connections to close, in ms. */
const STOP_GRACE_MS = 2000;

if (import.meta.main) {
  await runMain("dashboard", {
    parse: () => parseDashboardArgs(Deno.args),
    help: HELP,
    run: dashboard,
    logLevel: "warning",
  });
}
