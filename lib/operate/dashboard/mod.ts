/**
 * The live dashboard: one page served by `Deno.serve`, updated by Server-Sent Events pushed from
 * the queue's events exchange, with the dead letters and the actions on them (requeue, purge)
 * guarded by a token.
 *
 * Updates: the server keeps the model (a `QueueMonitor`, the recent task events, the last
 * failures, the dead letters) fed from a watcher of the queue, and pushes the whole view as one
 * `state` message whenever an event arrives (coalesced to at most five a second) and at least
 * every second, when the watcher reads the queue counts with passive declares (it reads them
 * again 100 ms after a task event too). No polling of the
 * management API. The dead letters are listed again (moved through, see `dead_letters.ts`) only
 * when their count changes or after an action, and pushed as a `dead` message only then. The page is plain HTML, CSS and JavaScript (no build step, no framework): it redraws
 * from each state and builds its DOM with `textContent` and `setAttribute`, never with markup.
 * @module
 */
import { openDeadLetters } from "../dead_letters.ts";
import type { DeadLetter, DeadLetters } from "../dead_letters.ts";
import { isTaskEvent, type TareasEvent, type TaskEvent } from "../../core/events.ts";
import { log } from "../../core/log.ts";
import { QueueMonitor } from "../../observe/monitor.ts";
import { type QueueState, watchQueue } from "../../observe/watch.ts";
import { buildTimeline } from "../../observe/replay.ts";

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

/** How long task events are kept for the timeline, in ms. */
const WINDOW_MS = 5 * 60_000;
/** Most task events kept for the timeline. */
const MAX_EVENTS = 5000;
/** Most `worker.online` and `worker.offline` events kept for the timeline, apart from those. */
const MAX_WORKER_EVENTS = 1000;
/**
 * Most workers sent to the page, in the table and in the timeline (the monitor tracks up to 1000;
 * events are not signed, and forged names must not make the page endless).
 */
const MAX_WORKER_ROWS = 100;
/** Failures shown. */
const MAX_FAILURES = 50;
/** Dead letters listed. */
const MAX_DEAD = 200;
/** Seconds of completion rate charted. */
const RATE_SECONDS = 120;
/** Longest text of a payload or body sent to the page. */
const MAX_TEXT = 4000;
/**
 * Most bytes queued for one page and not yet taken by the server. A page that stops reading (a
 * frozen tab, a client that never reads) first fills its socket's buffers, then this queue; past
 * this bound it is dropped: its stream is ended, which frees what was queued and closes the
 * connection (an EventSource reconnects by itself, and starts again from a fresh state). A state
 * message is about 0.2 KB per bar of the timeline: 1 MB with 5000 task events shown (measured),
 * more with long failure reasons. A page that reads keeps up far below this.
 */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

const PAGE_FILES: Record<string, string> = {
  "/": "index.html",
  "/app.js": "app.js",
  "/style.css": "style.css",
};

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

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
  const files = await loadPage();

  const recent: { ms: number; event: TareasEvent }[] = []; // by arrival, for the timeline
  const workerEvents: { ms: number; event: TareasEvent }[] = []; // likewise, bounded apart
  const failures: TaskEvent[] = [];
  const rate = new Map<number, number>(); // second → completions
  let dead: { total: number; letters: DeadLetter[]; error?: string } = { total: 0, letters: [] };
  let deadCount = -1;
  let error: string | undefined;
  const clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const encoder = new TextEncoder();

  let stopped = false; // Closing: events still arriving start no timer.
  let broadcastTimer: ReturnType<typeof setTimeout> | undefined;
  const scheduleBroadcast = () => {
    if (stopped) return;
    broadcastTimer ??= setTimeout(() => {
      broadcastTimer = undefined;
      broadcast();
    }, 200);
  };
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  const onEvent = (event: TareasEvent) => {
    if (stopped) return;
    const now = Date.now();
    if (isTaskEvent(event) && typeof event.taskId === "string") {
      recent.push({ ms: now, event });
      if (recent.length > MAX_EVENTS) recent.splice(0, recent.length - MAX_EVENTS);
      if (event.type === "task.failed" || event.type === "task.dead") {
        failures.unshift(event);
        failures.length = Math.min(failures.length, MAX_FAILURES);
      }
      if (event.type === "task.completed") {
        const second = Math.floor(now / 1000);
        rate.set(second, (rate.get(second) ?? 0) + 1);
      }
      refreshTimer ??= setTimeout(() => {
        refreshTimer = undefined;
        watcher.refresh();
      }, 100);
    } else if (event.type === "worker.online" || event.type === "worker.offline") {
      workerEvents.push({ ms: now, event });
      if (workerEvents.length > MAX_WORKER_EVENTS) workerEvents.shift();
    }
    scheduleBroadcast();
  };

  const monitor = new QueueMonitor(queue);
  const watcher = await watchQueue({
    url: options.url,
    queue,
    heartbeat: options.heartbeat ?? 15,
    name: "tareas dashboard",
  });
  let letters: DeadLetters | undefined;
  try {
    // A queue not declared yet is waited for: the page says so and goes live once it is.
    if (watcher.state.error && watcher.state.declared !== false) throw watcher.state.error;
    letters = await openDeadLetters({
      url: options.url,
      queue,
      heartbeat: options.heartbeat ?? 15,
      name: "tareas dashboard dead letters",
    });
  } catch (error) {
    await watcher.close();
    throw error;
  }
  const deadLetters = letters;

  let listing: Promise<void> | undefined;
  const listDead = (): Promise<void> =>
    listing ??= deadLetters.list({ limit: MAX_DEAD }).then((result) => {
      dead = { total: result.total, letters: result.letters };
      deadCount = result.total;
    }, (cause) => {
      dead = { ...dead, error: message(cause) };
    }).finally(() => {
      listing = undefined;
      updateDead();
    });

  const onState = (state: QueueState) => {
    error = state.declared === false ? undefined : state.error?.message; // waiting is no error
    if (state.counts !== undefined) {
      monitor.setCounts(state.counts);
      // While a listing moves the dead letters through, one is briefly out of the count.
      if (listing === undefined && state.counts.dead !== deadCount) {
        deadCount = state.counts.dead;
        listDead();
      }
    }
    scheduleBroadcast();
  };
  const following = (async () => {
    for await (const update of watcher) {
      if (stopped) break;
      if (update.kind === "queue") {
        onState(update.state);
      } else {
        monitor.observe(update.event);
        onEvent(update.event);
      }
    }
  })().catch((cause) => {
    error = message(cause); // the connection gave up
    scheduleBroadcast();
  });

  const state = () => {
    const now = Date.now();
    const cutoff = now - WINDOW_MS;
    for (const list of [recent, workerEvents]) {
      let drop = 0;
      while (drop < list.length && list[drop]!.ms < cutoff) drop++;
      if (drop > 0) list.splice(0, drop);
    }
    for (const second of rate.keys()) if (second < now / 1000 - RATE_SECONDS) rate.delete(second);
    const snapshot = monitor.snapshot(now);
    const lost = snapshot.workers.filter((w) => w.state === "lost").map((w) => w.name);
    const timeline = buildTimeline([...workerEvents, ...recent].map((entry) => entry.event), {
      killed: lost,
      now: new Date(now),
      // Events stamped before the window or after now (by more than clocks differ) are forged
      // or from a wrong clock: they would stretch or squash the page's timeline.
      startedAt: cutoff,
      exactAttempts: MAX_EVENTS, // the page draws bars, never strips
      maxRows: MAX_WORKER_ROWS,
    });
    const shownWorkers = snapshot.workers.slice(0, MAX_WORKER_ROWS); // online first
    const nowSecond = Math.floor(now / 1000);
    return {
      now,
      queue,
      error: error ?? null,
      /** False while the queue does not exist (not declared yet, or deleted): the page waits. */
      declared: watcher.state.declared !== false,
      listening: watcher.state.listening,
      snapshot: { ...snapshot, workers: shownWorkers },
      /** Workers tracked and not sent: past MAX_WORKER_ROWS. */
      workersNotShown: snapshot.workers.length - shownWorkers.length,
      timeline: {
        rows: timeline.rows.map((row) => ({
          worker: row.worker,
          lanes: row.lanes,
          bars: row.bars.map((bar) => ({
            taskId: bar.taskId,
            seq: bar.seq,
            attempt: bar.attempt,
            start: bar.start.getTime(),
            end: bar.end.getTime(),
            status: bar.status,
            redelivered: bar.redelivered,
            lane: bar.lane,
            reason: bar.reason === undefined ? null : clip(bar.reason),
          })),
        })),
        workersNotShown: timeline.workersNotShown,
        outOfRange: timeline.outOfRange,
      },
      rate: Array.from({ length: 60 }, (_, i) => rate.get(nowSecond - 59 + i) ?? 0),
      failures: failures.map((event) => ({
        type: event.type,
        worker: event.worker,
        taskId: event.taskId,
        seq: event.seq,
        attempt: event.attempt,
        reason: typeof event.reason === "string" ? clip(event.reason) : null,
        at: event.at,
      })),
    };
  };

  /** The dead letters as the page shows them: sent on connect and whenever they change. */
  let deadMessage = "";
  const updateDead = () => {
    const view = {
      total: dead.total,
      error: dead.error ?? null,
      letters: dead.letters.map((letter) => ({
        id: letter.id,
        reason: letter.reason,
        attempts: letter.attempts ?? null,
        deadAt: letter.deadAt ?? null,
        worker: letter.worker ?? null,
        size: letter.size,
        payload: letter.payload === undefined ? null : clip(JSON.stringify(letter.payload)),
        body: clip(
          letter.json === undefined
            ? new TextDecoder().decode(letter.body.subarray(0, MAX_TEXT))
            : JSON.stringify(letter.json),
        ),
      })),
    };
    deadMessage = `event: dead\ndata: ${JSON.stringify(view)}\n\n`;
    sendAll(deadMessage);
  };

  /** Queues one message for every page; every page's queue shares the same bytes. */
  const sendAll = (text: string) => {
    if (clients.size === 0) return;
    const chunk = encoder.encode(text);
    for (const client of clients) send(client, chunk);
  };
  const send = (client: ReadableStreamDefaultController<Uint8Array>, chunk: Uint8Array) => {
    // desiredSize is MAX_UNSENT_BYTES less the bytes queued; null once the stream errored.
    const room = client.desiredSize;
    if (room !== null && room < 0) {
      clients.delete(client);
      // Erroring the stream drops what is queued and makes the server abort the response.
      client.error(new StoppedReading());
      logger.info("Dropped a page that stopped reading: {bytes} bytes not sent", {
        bytes: MAX_UNSENT_BYTES - room,
      });
      return;
    }
    try {
      client.enqueue(chunk);
    } catch {
      clients.delete(client); // closed by the browser
    }
  };
  const broadcast = () => sendAll(`event: state\ndata: ${JSON.stringify(state())}\n\n`);

  const keepAlive = setInterval(() => sendAll(": keep-alive\n\n"), 15_000);

  const action = async (request: Request, path: string): Promise<Response> => {
    if (!sameToken(request.headers.get("x-tareas-token") ?? "", token)) {
      return json(403, { ok: false, message: "Refused: the token is missing or wrong" });
    }
    let body: Record<string, unknown> = {};
    try {
      const text = await request.text();
      if (text.length > 10_000) throw new Error("too large");
      body = text === "" ? {} : JSON.parse(text);
      if (typeof body !== "object" || body === null) throw new Error("not an object");
    } catch {
      return json(400, { ok: false, message: "Expected a JSON object" });
    }
    if (watcher.state.declared === false) {
      return json(409, {
        ok: false,
        message: `Queue "${queue}" does not exist yet: it has no dead letters to act on`,
      });
    }
    try {
      let text: string;
      if (path === "/api/requeue") {
        if (typeof body.id !== "string" || body.id === "") {
          return json(400, { ok: false, message: 'Expected {"id": "..."}' });
        }
        const { requeued } = await deadLetters.requeue(new Set([body.id]));
        if (requeued === 0) {
          return json(404, { ok: false, message: `No dead letter with id ${body.id}` });
        }
        text = `Requeued ${requeued} to ${queue}`;
      } else if (path === "/api/requeue-all") {
        text = `Requeued ${(await deadLetters.requeue("all")).requeued} to ${queue}`;
      } else {
        text = `Deleted ${await deadLetters.purge()} dead letters`;
      }
      logger.info("{action}: {result}", { action: path.slice(5), result: text });
      deadCount = -1; // list again on the next state
      await watcher.refresh();
      return json(200, { ok: true, message: text });
    } catch (cause) {
      return json(500, { ok: false, message: message(cause) });
    }
  };

  const handle = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    // DNS rebinding: a page of another site resolved to this address carries its own Host.
    const hostHeader = request.headers.get("host") ?? "";
    if (!allowedHosts.has(hostHeader)) {
      return json(421, { ok: false, message: "Unexpected Host header" });
    }
    const origin = request.headers.get("origin");
    if (request.method === "POST") {
      if (origin !== null && !allowedOrigins.has(origin)) {
        return json(403, { ok: false, message: "Refused: request from another origin" });
      }
      if (["/api/requeue", "/api/requeue-all", "/api/purge"].includes(url.pathname)) {
        return await action(request, url.pathname);
      }
      return json(404, { ok: false, message: "Not found" });
    }
    if (request.method !== "GET") return json(405, { ok: false, message: "Method not allowed" });
    if (url.pathname === "/events") return stream();
    if (url.pathname === "/favicon.ico") return new Response(null, { status: 204 });
    const file = PAGE_FILES[url.pathname];
    if (file === undefined) return json(404, { ok: false, message: "Not found" });
    return new Response(files[file], {
      headers: { "content-type": CONTENT_TYPES[file.split(".").pop()!]!, ...SECURITY_HEADERS },
    });
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: host,
      port: options.port ?? 8080,
      onListen: () => {},
      onError: (error) => {
        // A page dropped for not reading is no error: it was logged when dropped.
        if (!(error instanceof StoppedReading)) {
          logger.error("Unexpected error serving a request: {error}", { error });
        }
        return json(500, { ok: false, message: "Internal error" });
      },
    }, handle);
  } catch (error) {
    stopped = true;
    clearInterval(keepAlive);
    await Promise.allSettled([watcher.close(), following, listing, deadLetters.close()]);
    throw error;
  }
  const port = server.addr.port;
  const allowedHosts = new Set([
    `${host}:${port}`,
    `127.0.0.1:${port}`,
    `localhost:${port}`,
    `[::1]:${port}`,
  ]);
  const allowedOrigins = new Set([...allowedHosts].map((h) => `http://${h}`));

  const stream = (): Response => {
    let self: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        self = controller;
        clients.add(controller);
        controller.enqueue(
          encoder.encode(
            `retry: 1000\nevent: state\ndata: ${JSON.stringify(state())}\n\n${deadMessage}`,
          ),
        );
      },
      cancel() {
        clients.delete(self);
      },
      // Counted in bytes, so that desiredSize tells how much is queued (see MAX_UNSENT_BYTES).
    }, new ByteLengthQueuingStrategy({ highWaterMark: MAX_UNSENT_BYTES }));
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        ...SECURITY_HEADERS,
      },
    });
  };

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      stopped = true;
      clearInterval(keepAlive);
      clearTimeout(broadcastTimer);
      clearTimeout(refreshTimer);
      for (const client of clients) {
        try {
          client.close();
        } catch {
          // Already closed by the browser.
        }
      }
      clients.clear();
      // Together: an action in progress waits on the broker, and the server's shutdown on it;
      // closing the connections ends it (it fails) rather than wait for its answer.
      await Promise.allSettled([
        server.shutdown(),
        watcher.close(),
        following,
        listing,
        deadLetters.close(),
      ]);
    })();

  const shownHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    token,
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function loadPage(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of new Set(Object.values(PAGE_FILES))) {
    const url = new URL(`./page/${name}`, import.meta.url);
    files[name] = url.protocol === "file:"
      ? await Deno.readTextFile(url)
      : await (await fetch(url)).text();
  }
  return files;
}

/** Ends the stream of a page that stopped reading (see MAX_UNSENT_BYTES). */
class StoppedReading extends Error {
  constructor() {
    super("The page stopped reading");
    this.name = "StoppedReading";
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...SECURITY_HEADERS },
  });
}

function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}

function clip(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT)}…`;
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

/** Compares two tokens in time independent of where they differ. */
function sameToken(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]!;
  return diff === 0;
}
