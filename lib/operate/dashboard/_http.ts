/**
 * The dashboard's HTTP side, apart from what it serves: the page's files, the headers every
 * response carries, the checks every request passes (its Host, and a POST's Origin), and the
 * routing of a request to its handler by method and path. A new endpoint is one more entry in
 * the {@linkcode Routes} given to {@linkcode router} (see `startDashboard` in `mod.ts`).
 * @module
 */

/** Headers of every response: the page runs only its own script and style, in no frame. */
export const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; " +
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** The page's files, by path. */
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

/** What answers a request. */
export type RouteHandler = (request: Request) => Response | Promise<Response>;

/** The dashboard's endpoints: handlers by method, then by path. */
export interface Routes {
  /** GET endpoints: any request, from any page that may read this one. */
  GET: Record<string, RouteHandler>;
  /** POST endpoints: refused when the request comes from a page of another origin. */
  POST: Record<string, RouteHandler>;
}

/** A JSON response with the security headers. */
export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...SECURITY_HEADERS },
  });
}

/** Loads the page's files (`page/`), from disk or, when tareas is imported by URL, over HTTP. */
export async function pageRoutes(): Promise<Record<string, RouteHandler>> {
  const routes: Record<string, RouteHandler> = {};
  for (const [path, name] of Object.entries(PAGE_FILES)) {
    const url = new URL(`./page/${name}`, import.meta.url);
    const text = url.protocol === "file:"
      ? await Deno.readTextFile(url)
      : await (await fetch(url)).text();
    const headers = { "content-type": CONTENT_TYPES[name.split(".").pop()!]!, ...SECURITY_HEADERS };
    routes[path] = () => new Response(text, { headers });
  }
  routes["/favicon.ico"] = () => new Response(null, { status: 204 });
  return routes;
}

/**
 * The request handler of `routes` for a server listening on `host:port`: a request that names
 * another host (DNS rebinding: a page of another site resolved to this address carries its own
 * Host) is refused, and so is a POST from a page of another origin.
 */
export function router(routes: Routes, host: string, port: number): RouteHandler {
  const hosts = new Set([host, "127.0.0.1", "localhost", "[::1]"].map((h) => `${h}:${port}`));
  const origins = new Set([...hosts].map((h) => `http://${h}`));
  return async (request) => {
    if (!hosts.has(request.headers.get("host") ?? "")) {
      return json(421, { ok: false, message: "Unexpected Host header" });
    }
    const origin = request.headers.get("origin");
    if (request.method === "POST" && origin !== null && !origins.has(origin)) {
      return json(403, { ok: false, message: "Refused: request from another origin" });
    }
    if (request.method !== "GET" && request.method !== "POST") {
      return json(405, { ok: false, message: "Method not allowed" });
    }
    const handler = routes[request.method][new URL(request.url).pathname];
    return handler === undefined
      ? json(404, { ok: false, message: "Not found" })
      : await handler(request);
  };
}

/** A random token of 24 URL-safe characters. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

/** Compares two tokens in time independent of where they differ. */
export function sameToken(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) diff |= (a[i] ?? 0) ^ b[i]!;
  return diff === 0;
}
