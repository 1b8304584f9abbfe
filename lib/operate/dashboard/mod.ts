/**
 * The live dashboard: one page served by `Deno.serve`, updated by Server-Sent Events pushed from
 * the queue's events exchange, with the dead letters and the actions on them (requeue, purge)
 * guarded by a token.
 *
 * Updates: the server keeps the model (`_model.ts`: a `QueueMonitor`, the recent task events, the
 * running tasks' progress, the last failures) fed from a watcher of the queue, and pushes the
 * whole view as one `state` message whenever an event arrives (coalesced to at most five a
 * second) and at least every second, when the watcher reads the queue counts with passive
 * declares (it reads them again 100 ms after a task event too). No polling of the management API.
 * The dead letters are listed again (moved through, see `dead_letters.ts`) only when their count
 * changes or after an action, and pushed as a `dead` message only then (`_dead.ts`). The streams
 * to the pages are in `_stream.ts`; the routing of requests in `_http.ts`, and an endpoint is one
 * entry of the routes `startDashboard` builds. The page is plain HTML, CSS and JavaScript (no
 * build step, no framework): it redraws from each state and builds its DOM with `textContent` and
 * `setAttribute`, never with markup.
 * @module
 */
import { type DeadLetters, openDeadLetters } from "../dead_letters.ts";
import type { TareasEvent } from "../../core/events.ts";
import type { Logger } from "../../deps/logtape.ts";
import { log } from "../../core/log.ts";
import { type QueueState, type QueueWatcher, watchQueue } from "../../observe/watch.ts";
import { DeadPanel, firstLine } from "./_dead.ts";
import {
  json,
  pageRoutes,
  randomToken,
  type RouteHandler,
  router,
  type Routes,
  sameToken,
} from "./_http.ts";
import { queueMetricsResponse } from "../queue_metrics.ts";
import { DashboardModel } from "./_model.ts";
import { PageStreams, StoppedReading } from "./_stream.ts";

/**
 * Options of {@linkcode startDashboard}.
 *
 * @example
 * ```ts
 * const options: DashboardOptions = { url, queue: "images", host: "127.0.0.1", port: 8080 };
 * await using dashboard = await startDashboard(options);
 * ```
 */
export interface DashboardOptions {
  /** Broker URL. */
  url: string;
  /** The work queue to show. */
  queue: string;
  /** Address to listen on. @default {"127.0.0.1"} */
  host?: string;
  /** Port to listen on, 0 for any free port. @default {8080} */
  port?: number;
  /** Token the actions need; printed at start-up. @default {a random one} */
  token?: string;
  /** AMQP heartbeat in seconds. @default {15} */
  heartbeat?: number;
}

/**
 * A running dashboard.
 *
 * @example
 * ```ts
 * await using dashboard: Dashboard = await startDashboard({ url, queue: "images", port: 0 });
 * console.log(`${dashboard.url}#token=${dashboard.token}`);
 * ```
 */
export interface Dashboard extends AsyncDisposable {
  /** The page's address, without the token. */
  readonly url: string;
  /** The token requeue and purge need (the page takes it from `#token=` in its address). */
  readonly token: string;
  /** Stops serving and closes the broker connections. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the dashboard of `queue`: checks the queue (as `status` does), starts listening to its
 * events and serves the page. A queue that does not exist yet (or is deleted later, as a
 * migration does) is waited for: the page says "waiting for queue … to be declared" and goes
 * live once something declares it.
 *
 * @throws {ConfigError} when the queue was not set up by tareas, or a permission is missing.
 * @example
 * ```ts
 * await using dashboard = await startDashboard({ url, queue: "tareas_distribuidas", port: 0 });
 * console.log(`${dashboard.url}#token=${dashboard.token}`);
 * ```
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const logger = log("dashboard");
  const { queue } = options;
  const host = options.host ?? "127.0.0.1";
  const token = options.token ?? randomToken();
  const pages = await pageRoutes();
  const connection = { url: options.url, queue, heartbeat: options.heartbeat ?? 15 };
  const watcher = await watchQueue({ ...connection, name: "tareas dashboard" });
  let letters: DeadLetters;
  try {
    // A queue not declared yet is waited for: the page says so and goes live once it is.
    if (watcher.state.error && watcher.state.declared !== false) throw watcher.state.error;
    letters = await openDeadLetters({ ...connection, name: "tareas dashboard dead letters" });
  } catch (error) {
    await watcher.close();
    throw error;
  }
  const live = new LiveQueue(queue, watcher, letters, logger);
  const routes: Routes = {
    GET: { ...pages, "/events": () => live.open(), "/metrics": () => live.metrics() },
    POST: Object.fromEntries(
      ["requeue", "requeue-all", "purge"].map((action) => [
        `/api/${action}`,
        (request: Request) => live.act(request, action, token),
      ]),
    ),
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = serve(host, options.port ?? 8080, routes, logger);
  } catch (error) {
    await live.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  // Together: an action in progress waits on the broker, and the server's shutdown on it;
  // closing the connections ends it (it fails) rather than wait for its answer.
  const close = () => closing ??= Promise.allSettled([server.shutdown(), live.close()]).then();
  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${server.addr.port}/`,
    token,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Serves `routes` on `host:port` (0 for any free port). */
function serve(
  host: string,
  port: number,
  routes: Routes,
  logger: Logger,
): Deno.HttpServer<Deno.NetAddr> {
  let handle: RouteHandler = () => json(503, { ok: false, message: "Starting" });
  const server = Deno.serve({
    hostname: host,
    port,
    onListen: () => {},
    onError: (error) => {
      // A page dropped for not reading is no error: it was logged when dropped.
      if (!(error instanceof StoppedReading)) {
        logger.error("Unexpected error serving a request: {error}", { error });
      }
      return json(500, { ok: false, message: "Internal error" });
    },
  }, (request) => handle(request));
  // The Host check needs the port, known once listening.
  handle = router(routes, host, server.addr.port);
  return server;
}

/**
 * A queue followed live for the pages: its events feed the model, its counts the model and the
 * dead letters, and every page gets a `state` message whenever an event arrives (coalesced to
 * at most five a second) and at least every second.
 */
class LiveQueue {
  #queue: string;
  #watcher: QueueWatcher;
  #model: DashboardModel;
  #streams: PageStreams;
  #dead: DeadPanel;
  #logger: Logger;
  #following: Promise<void>;
  #error: string | undefined;
  #stopped = false; // Closing: events still arriving start no timer.
  #broadcastTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #closing: Promise<void> | undefined;

  constructor(queue: string, watcher: QueueWatcher, letters: DeadLetters, logger: Logger) {
    this.#queue = queue;
    this.#watcher = watcher;
    this.#logger = logger;
    this.#model = new DashboardModel(queue);
    this.#streams = new PageStreams(logger);
    this.#dead = new DeadPanel(letters, queue, (message) => this.#streams.sendAll(message));
    this.#following = this.#follow().catch((cause) => {
      this.#error = firstLine(cause); // the connection gave up
      this.#scheduleBroadcast();
    });
  }

  async #follow(): Promise<void> {
    for await (const update of this.#watcher) {
      if (this.#stopped) break;
      if (update.kind === "queue") this.#onState(update.state);
      else this.#onEvent(update.event);
    }
  }

  #onEvent(event: TareasEvent): void {
    // A task event: the counts it changed are read again 100 ms later.
    if (this.#model.observe(event)) {
      this.#refreshTimer ??= setTimeout(() => {
        this.#refreshTimer = undefined;
        this.#watcher.refresh();
      }, 100);
    }
    this.#scheduleBroadcast();
  }

  #onState(state: QueueState): void {
    this.#error = state.declared === false ? undefined : state.error?.message; // waiting: no error
    if (state.counts !== undefined) {
      this.#model.monitor.setCounts(state.counts);
      this.#dead.setCount(state.counts.dead);
    }
    this.#scheduleBroadcast();
  }

  #scheduleBroadcast(): void {
    if (this.#stopped) return;
    this.#broadcastTimer ??= setTimeout(() => {
      this.#broadcastTimer = undefined;
      this.#streams.sendAll(this.#stateMessage());
    }, 200);
  }

  #stateMessage(): string {
    const { state } = this.#watcher;
    const view = {
      error: this.#error,
      declared: state.declared !== false,
      listening: state.listening,
    };
    return `event: state\ndata: ${JSON.stringify(this.#model.state(view))}\n\n`;
  }

  /** The queue's figures as Prometheus text, for a scrape of `/metrics`. */
  metrics(): Promise<Response> {
    return queueMetricsResponse(this.#model.monitor.snapshot());
  }

  /** A new page's event stream: the state and the dead letters, then every change. */
  open(): Response {
    return this.#streams.open(() => `retry: 1000\n${this.#stateMessage()}${this.#dead.message}`);
  }

  /** An action on the dead letters, which needs `token` in the `x-tareas-token` header. */
  async act(request: Request, action: string, token: string): Promise<Response> {
    if (!sameToken(request.headers.get("x-tareas-token") ?? "", token)) {
      return json(403, { ok: false, message: "Refused: the token is missing or wrong" });
    }
    let body: Record<string, unknown>;
    try {
      const text = await request.text();
      if (text.length > 10_000) throw new Error("too large");
      body = text === "" ? {} : JSON.parse(text);
      if (typeof body !== "object" || body === null) throw new Error("not an object");
    } catch {
      return json(400, { ok: false, message: "Expected a JSON object" });
    }
    if (this.#watcher.state.declared === false) {
      return json(409, {
        ok: false,
        message: `Queue "${this.#queue}" does not exist yet: it has no dead letters to act on`,
      });
    }
    try {
      const { status, message } = await this.#dead.act(action, body);
      if (status !== 200) return json(status, { ok: false, message });
      this.#logger.info("{action}: {result}", { action, result: message });
      await this.#watcher.refresh();
      return json(200, { ok: true, message });
    } catch (cause) {
      return json(500, { ok: false, message: firstLine(cause) });
    }
  }

  /** Ends every page's stream and closes the broker connections. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#stopped = true;
      clearTimeout(this.#broadcastTimer);
      clearTimeout(this.#refreshTimer);
      this.#streams.close();
      await Promise.allSettled([this.#watcher.close(), this.#following, this.#dead.close()]);
    })();
  }
}
