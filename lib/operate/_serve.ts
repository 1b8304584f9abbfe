/**
 * The small HTTP servers of a worker (metrics, health checks): a few GET routes on one port,
 * 127.0.0.1 unless told otherwise, an idempotent `close()`, and a bind failure as one line. On
 * loopback, a request must name the server in its Host header (as the dashboard asks).
 * @module
 */
import { errorMessage, UsageError } from "../core/errors.ts";

/** Where a server listens, and what to call for each path. */
export interface ServeOptions {
  /** What it serves, for the error message of a failed bind ("metrics", "health checks"). */
  what: string;
  /** TCP port; 0 for any free port. */
  port: number;
  /** Address to listen on. */
  hostname: string;
  /** Aborting it closes the server. */
  signal?: AbortSignal | undefined;
  /** The response to a GET (or HEAD) of each path. */
  routes: Record<string, () => Response | Promise<Response>>;
}

/** A listening server. */
export interface Listening {
  /** `http://<hostname>:<port>`, with the port it got. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Stops listening and waits for the requests in progress; idempotent. */
  close(): Promise<void>;
}

/**
 * Listens on `options.hostname`:`options.port` and answers GET and HEAD of the routes.
 *
 * @throws {UsageError} when the port or address cannot be listened on (in use, not an address of
 * this machine).
 */
export function serve(options: ServeOptions): Listening {
  const { what, port, hostname, signal, routes } = options;
  checkPort(port);
  let server: Deno.HttpServer<Deno.NetAddr>;
  // The Host headers a loopback server answers, known once it listens; any on other addresses.
  const hosts = LOOPBACK.has(hostname) ? new Set<string>() : undefined;
  try {
    server = Deno.serve({ port, hostname, onListen: () => {} }, (request) => {
      // DNS rebinding: a page of another site, its name resolved to 127.0.0.1, sends its own Host.
      if (hosts !== undefined && !hosts.has(request.headers.get("host") ?? "")) {
        return text(421, "Unexpected Host header\n");
      }
      const route = routes[new URL(request.url).pathname];
      if (route === undefined) return text(404, "Not found\n");
      if (request.method !== "GET" && request.method !== "HEAD") {
        return new Response("Method not allowed\n", {
          status: 405,
          headers: { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" },
        });
      }
      return route();
    });
  } catch (error) {
    throw new UsageError(
      `Cannot listen on ${hostPort(hostname, port)} for ${what}: ${errorMessage(error)}`,
      { cause: error },
    );
  }
  if (hosts !== undefined) {
    for (const host of loopbackHosts(server.addr.port)) hosts.add(host);
  }
  let closing: Promise<void> | undefined;
  const close = () => {
    signal?.removeEventListener("abort", close);
    return closing ??= server.shutdown().then(() => server.finished);
  };
  if (signal?.aborted) close();
  else signal?.addEventListener("abort", close, { once: true });
  return { url: `http://${hostPort(hostname, server.addr.port)}`, port: server.addr.port, close };
}

/** A plain-text response. */
export function text(status: number, body: string, contentType = "text/plain; charset=utf-8") {
  return new Response(body, {
    status,
    headers: { "content-type": contentType, "cache-control": "no-store" },
  });
}

/** A JSON response. */
export function json(status: number, body: unknown): Response {
  return text(status, `${JSON.stringify(body)}\n`, "application/json");
}

/** The addresses that only this machine reaches. */
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

/** The Host headers of a request to a loopback server on `port`. */
function loopbackHosts(port: number): Set<string> {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
}

function checkPort(port: number): void {
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) {
    throw new UsageError(`Invalid port ${port}: expected a whole number from 0 to 65535`);
  }
}

/** `host:port`, with an IPv6 address in brackets. */
function hostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
