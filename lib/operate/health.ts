/**
 * Health checks for an orchestrator: `/livez` says the process and its event loop answer (restart
 * it if not), `/readyz` says the worker is consuming (connected to a broker, not reconnecting, not
 * draining after SIGTERM). Kubernetes probes, Docker healthchecks and load balancers ask them.
 *
 * `/livez` is answered from the event loop itself, so a loop blocked by a handler's synchronous
 * work makes the probe time out. It also reports the loop's lag (see `_event_loop_lag.ts`) and
 * answers 503 once that exceeds {@linkcode HealthOptions.maxEventLoopLag}: a loop that late misses
 * the AMQP heartbeats that keep its connection.
 *
 * @example
 * ```ts
 * import { createWorker } from "../../mod.ts";
 * import { serveHealth } from "./health.ts";
 *
 * await using health = serveHealth({ port: 9465 });
 * await using worker = await createWorker({ handler: (task) => console.log(task.id), metrics: health });
 * // curl http://127.0.0.1:9465/readyz
 * ```
 * @module
 */
import type { Worker, WorkerObserver } from "../core/worker/types.ts";
import { EventLoopLag } from "./_event_loop_lag.ts";
import { json, serve } from "./_serve.ts";

/** The default of {@linkcode HealthOptions.maxEventLoopLag}, in ms. */
export const DEFAULT_MAX_EVENT_LOOP_LAG_MS = 10_000;

/**
 * Options of {@linkcode serveHealth}.
 *
 * @example
 * ```ts
 * const options: HealthOptions = { port: 9465, hostname: "0.0.0.0", worker };
 * ```
 */
export interface HealthOptions {
  /** TCP port; 0 for any free port (see {@linkcode HealthServer.url}). */
  port: number;
  /** Address to listen on: `"0.0.0.0"` for every interface. @default {"127.0.0.1"} */
  hostname?: string;
  /**
   * The worker `/readyz` speaks for. Without it, `/readyz` answers 503 until one is attached
   * (pass the server as `createWorker({ metrics })`, or call `attach`): a process still
   * connecting is live and not ready.
   */
  worker?: Worker;
  /**
   * Event loop lag beyond which `/livez` answers 503, in ms: the worst of the last 10 s, measured
   * by a timer every 500 ms.
   * @default {10_000}
   */
  maxEventLoopLag?: number;
  /** Aborting it closes the server. */
  signal?: AbortSignal;
}

/**
 * `/livez` and `/readyz` served; see {@linkcode serveHealth}.
 *
 * @example
 * ```ts
 * await using health = serveHealth({ port: 0, worker });
 * console.log(`${health.url}/readyz`);
 * ```
 */
export interface HealthServer extends WorkerObserver, AsyncDisposable {
  /** The server, `http://<hostname>:<port>` (the checks are its `/livez` and `/readyz`). */
  readonly url: string;
  /** Stops serving; idempotent. */
  close(): Promise<void>;
}

/** What `/readyz` answers. */
type Readiness = { status: "ready" } | { status: "not ready"; reason: string };

/** What `/livez` answers: live while the event loop's lag stays within `maxLag` ms. */
function livez(lag: EventLoopLag, maxLag: number): Response {
  const lagMs = Math.round(lag.lag());
  const live = lagMs <= maxLag;
  return json(live ? 200 : 503, { status: live ? "live" : "stalled", eventLoopLagMs: lagMs });
}

/** The workers `/readyz` speaks for: ready while every one attached is. */
class ReadyWorkers {
  #workers = new Set<Worker>();
  #attachedOnce = false;

  /** Speaks for `worker` too, until what it returns is called. */
  attach(worker: Worker): () => void {
    this.#workers.add(worker);
    this.#attachedOnce = true;
    return () => {
      this.#workers.delete(worker);
    };
  }

  /** What `/readyz` answers now. */
  readiness(): Readiness {
    if (this.#workers.size === 0) {
      const reason = this.#attachedOnce
        ? "the worker has stopped"
        : "the worker is not consuming yet";
      return { status: "not ready", reason };
    }
    for (const worker of this.#workers) {
      if (!worker.ready) {
        return {
          status: "not ready",
          reason: "the worker is not consuming: reconnecting to the broker, or stopping",
        };
      }
    }
    return { status: "ready" };
  }
}

/**
 * Serves `/livez` and `/readyz` on `http://<hostname>:<port>`:
 *
 * - `/livez`: 200 `{"status":"live","eventLoopLagMs":N}` while the event loop's lag stays within
 *   `maxEventLoopLag`, else 503 with `"status":"stalled"`.
 * - `/readyz`: 200 `{"status":"ready"}` while every attached worker is `ready` (consuming on a live
 *   connection, not stopping), else 503 `{"status":"not ready","reason":…}`: before a worker is
 *   attached, while one reconnects, from the moment its `close()` begins (a SIGTERM's drain), and
 *   once it has closed.
 *
 * @throws {UsageError} when the port is out of range or cannot be listened on.
 * @example
 * ```ts
 * await using health = serveHealth({ port: 9465 });
 * await using worker = await createWorker({ handler, metrics: health });
 * ```
 */
export function serveHealth(options: HealthOptions): HealthServer {
  const maxLag = options.maxEventLoopLag ?? DEFAULT_MAX_EVENT_LOOP_LAG_MS;
  if (!(maxLag > 0)) {
    throw new RangeError(`Invalid maxEventLoopLag ${maxLag}: expected a number of ms above 0`);
  }
  const ready = new ReadyWorkers();
  const lag = new EventLoopLag();
  const server = serve({
    what: "health checks",
    port: options.port,
    hostname: options.hostname ?? "127.0.0.1",
    routes: {
      "/livez": () => livez(lag, maxLag),
      "/readyz": () => {
        const state = ready.readiness();
        return json(state.status === "ready" ? 200 : 503, state);
      },
    },
  });
  lag.start();
  const attach = (worker: Worker) => ready.attach(worker);
  if (options.worker !== undefined) attach(options.worker);
  const { signal } = options;
  const stop = () => {
    signal?.removeEventListener("abort", stop);
    lag.stop();
    return server.close();
  };
  if (signal?.aborted) stop();
  else signal?.addEventListener("abort", stop, { once: true });
  return { url: server.url, attach, close: stop, [Symbol.asyncDispose]: stop };
}
