/**
 * A tiny TCP proxy for fault tests: clients connect to it instead of the broker, and the test can
 * cut every connection (as a network failure would) or stop forwarding bytes without closing
 * anything (a half-open connection, which only heartbeats detect).
 * @module
 */

/** Where the proxy forwards connections to. */
export interface ProxyTarget {
  /** Host to connect to, such as `127.0.0.1`. */
  hostname: string;
  /** Port to connect to. */
  port: number;
}

/** Options of {@linkcode startProxy}. */
export interface ProxyOptions {
  /** Sees each chunk of bytes a client sends, before it is forwarded. */
  tap?: (bytes: Uint8Array) => void;
}

/** A running proxy; see {@linkcode startProxy}. */
export interface Proxy extends AsyncDisposable {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** How many client connections are currently open through it. */
  readonly connections: number;
  /** Closes every current client and upstream connection; keeps listening for new clients. */
  cut(): void;
  /** Stops forwarding bytes in both directions, closing nothing (new clients are held too). */
  pause(): void;
  /** Forwards again, starting with the bytes held since {@linkcode Proxy.pause}. */
  resume(): void;
  /** Stops listening, closes every connection and waits for the forwarding loops. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a TCP proxy on a random port of 127.0.0.1 that forwards each client to `target`.
 *
 * @example
 * ```ts
 * await using proxy = startProxy({ hostname: "127.0.0.1", port: 5672 });
 * const connection = await amqp.connect(`amqp://guest:guest@127.0.0.1:${proxy.port}`);
 * proxy.cut(); // the connection closes; a new one through the proxy works
 * ```
 */
export function startProxy(target: ProxyTarget, options: ProxyOptions = {}): Proxy {
  return new TcpProxy(target, options);
}

/** Host and port of a broker URL, as a proxy's target. */
export function proxyTarget(url: string): ProxyTarget {
  const parsed = new URL(url);
  return { hostname: parsed.hostname, port: Number(parsed.port || 5672) };
}

/** The broker URL with its host and port replaced by the proxy's on `port`. */
export function throughProxy(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = "127.0.0.1";
  parsed.port = String(port);
  return parsed.href;
}

/** A client connection and its upstream, closed together. */
interface Pair {
  client: Deno.TcpConn;
  upstream: Deno.TcpConn | undefined;
  closed: boolean;
  /** Resolves when the pair is closed, to wake a forwarding loop held by a pause. */
  whenClosed: Promise<void>;
  markClosed: () => void;
}

class TcpProxy implements Proxy {
  readonly port: number;
  #target: ProxyTarget;
  #tap: ProxyOptions["tap"];
  #listener: Deno.TcpListener;
  #pairs = new Set<Pair>();
  #tasks = new Set<Promise<void>>();
  #gate: { promise: Promise<void>; open: () => void } | undefined;
  #closing: Promise<void> | undefined;

  constructor(target: ProxyTarget, options: ProxyOptions) {
    this.#target = target;
    this.#tap = options.tap;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#track(this.#acceptLoop());
  }

  get connections(): number {
    return this.#pairs.size;
  }

  cut(): void {
    for (const pair of this.#pairs) this.#closePair(pair);
  }

  pause(): void {
    if (this.#gate !== undefined) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#gate = { promise, open: resolve };
  }

  resume(): void {
    const gate = this.#gate;
    this.#gate = undefined;
    gate?.open();
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    this.cut();
    this.resume();
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #acceptLoop(): Promise<void> {
    while (true) {
      let client: Deno.TcpConn;
      try {
        client = await this.#listener.accept();
      } catch {
        return; // The listener was closed.
      }
      if (this.#closing !== undefined) {
        client.close();
        return;
      }
      this.#track(this.#serve(client));
    }
  }

  async #serve(client: Deno.TcpConn): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const pair: Pair = {
      client,
      upstream: undefined,
      closed: false,
      whenClosed: promise,
      markClosed: resolve,
    };
    this.#pairs.add(pair);
    try {
      const upstream = await Deno.connect(this.#target);
      if (pair.closed) {
        upstream.close();
        return;
      }
      pair.upstream = upstream;
      await Promise.all([
        this.#forward(pair, client, upstream, this.#tap),
        this.#forward(pair, upstream, client),
      ]);
    } catch {
      // Upstream refused: the client sees its connection closed.
    } finally {
      this.#closePair(pair);
    }
  }

  /** Copies bytes from `from` to `to` until either side ends, holding them while paused. */
  async #forward(
    pair: Pair,
    from: Deno.TcpConn,
    to: Deno.TcpConn,
    tap?: (bytes: Uint8Array) => void,
  ): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (!pair.closed) {
        const read = await from.read(buffer);
        if (read === null) break;
        tap?.(buffer.subarray(0, read));
        while (this.#gate !== undefined && !pair.closed) {
          await Promise.race([this.#gate.promise, pair.whenClosed]);
        }
        if (pair.closed) break;
        let written = 0;
        while (written < read) written += await to.write(buffer.subarray(written, read));
      }
    } catch {
      // The pair was cut or a peer reset the connection.
    } finally {
      this.#closePair(pair);
    }
  }

  #closePair(pair: Pair): void {
    if (pair.closed) return;
    pair.closed = true;
    this.#pairs.delete(pair);
    for (const conn of [pair.client, pair.upstream]) {
      try {
        conn?.close();
      } catch {
        // Already closed.
      }
    }
    pair.markClosed();
  }
}
