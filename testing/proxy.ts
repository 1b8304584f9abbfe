/**
 * A tiny TCP proxy for fault tests: clients connect to it instead of the broker, and the test can
 * cut every connection (as a network failure would), stop forwarding bytes without closing
 * anything (a half-open connection, which only heartbeats detect), or make the client die, as far
 * as the broker can tell, at a precise AMQP command: right after a publish, right before an ack.
 * @module
 */

/** Where the proxy forwards connections to. */
export interface ProxyTarget {
  /** Host to connect to, such as `127.0.0.1`. */
  hostname: string;
  /** Port to connect to. */
  port: number;
}

/** One AMQP 0-9-1 frame. */
export interface Frame {
  /** 1 method, 2 content header, 3 content body, 8 heartbeat. */
  type: number;
  /** The channel it belongs to (0: the connection). */
  channel: number;
  /** Its payload, between the size and the frame end. */
  payload: Uint8Array;
}

/**
 * A command a client sent, assembled from its frames: a `basic.publish` once its last body frame
 * has arrived, a `basic.ack`, or any other method.
 */
export type ClientCommand =
  | {
    kind: "publish";
    channel: number;
    exchange: string;
    routingKey: string;
    body: Uint8Array;
  }
  | { kind: "ack"; channel: number; deliveryTag: number; multiple: boolean }
  | { kind: "method"; channel: number; classId: number; methodId: number };

/** Where a client dies: before the frame that completes a command reaches the broker, or after. */
export type DeathPoint = "before" | "after";

/** Options of {@linkcode startProxy}. */
export interface ProxyOptions {
  /**
   * Sees each chunk of bytes a client sends, before it is forwarded, with the number of the
   * client's connection (1 for the first the proxy accepted, and so on).
   */
  tap?: (bytes: Uint8Array, connection: number) => void;
  /**
   * Sees each command a client sends, in order, before the frame that completes it is forwarded.
   * Returning `"before"` or `"after"` makes the client die there, as far as the broker can tell:
   * the proxy forwards the client's bytes up to that frame (`"before"`) or through it
   * (`"after"`) and nothing more, ends every connection as a killed process leaves it (the
   * broker reads all it was sent, then the end of the stream), and refuses new connections: the
   * client process lives on, cut off, for the test to kill. See {@linkcode Proxy.died}.
   */
  dieAt?: (command: ClientCommand) => DeathPoint | undefined;
  /**
   * Once {@linkcode ProxyOptions.dieAt} chose its point, the client's bytes up to it are forwarded
   * and the proxy waits for this before it dies, holding what the client sends next, while the
   * broker's replies still reach the client. A test waits so for what the broker must have done
   * first: a publish the client sent but the broker had not yet routed is lost when its
   * connection ends (seen: a completion event sent just before the death never reached anyone).
   */
  dieWhen?: () => Promise<unknown>;
}

/** A running proxy; see {@linkcode startProxy}. */
export interface Proxy extends AsyncDisposable {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** How many client connections are currently open through it. */
  readonly connections: number;
  /** Resolves once {@linkcode ProxyOptions.dieAt} chose a point and the proxy acted on it. */
  readonly died: Promise<void>;
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

/** Whether `frame` is the method `classId`.`methodId` (basic.publish is 60.40, basic.ack 60.80). */
export function isMethod(frame: Frame, classId: number, methodId: number): boolean {
  if (frame.type !== 1 || frame.payload.length < 4) return false;
  const view = new DataView(frame.payload.buffer, frame.payload.byteOffset, 4);
  return view.getUint16(0) === classId && view.getUint16(2) === methodId;
}

/**
 * A proxy's `tap` that cuts each client connection's byte stream into frames (after its 8-byte
 * protocol header) and calls `onFrame` with each, in order, and the connection's number.
 */
export function clientFrames(
  onFrame: (frame: Frame, connection: number) => void,
): (bytes: Uint8Array, connection: number) => void {
  const readers = new Map<number, FrameReader>();
  return (bytes, connection) => {
    let reader = readers.get(connection);
    if (reader === undefined) readers.set(connection, reader = new FrameReader());
    for (const { frame } of reader.push(bytes)) onFrame(frame, connection);
  };
}

/** A frame and where it ends in the chunk that completed it (an offset into that chunk). */
interface Located {
  frame: Frame;
  /** Offset in the chunk where the frame starts; negative when it began in an earlier chunk. */
  start: number;
  end: number;
}

/** Incremental frame parser of a client's stream. */
class FrameReader {
  #pending = new Uint8Array(0); // A frame may straddle chunks.
  #header = 8; // "AMQP\0\0\x09\x01" bytes still to skip.

  push(bytes: Uint8Array): Located[] {
    const base = this.#pending.length; // Offset of `bytes` in `data`.
    const data = new Uint8Array(base + bytes.length);
    data.set(this.#pending);
    data.set(bytes, base);
    const view = new DataView(data.buffer);
    const frames: Located[] = [];
    let at = Math.min(this.#header, data.length);
    this.#header -= at;
    // type (1), channel (2), size (4), payload (size), frame end (1)
    while (this.#header === 0 && data.length - at >= 7) {
      const size = view.getUint32(at + 3);
      if (data.length - at < 8 + size) break;
      frames.push({
        frame: {
          type: data[at]!,
          channel: view.getUint16(at + 1),
          payload: data.slice(at + 7, at + 7 + size),
        },
        start: at - base,
        end: at + 8 + size - base,
      });
      at += 8 + size;
    }
    this.#pending = data.slice(at);
    return frames;
  }
}

/** Assembles a client's frames into {@linkcode ClientCommand}s. */
class CommandReader {
  #publishing = new Map<
    number,
    { exchange: string; routingKey: string; size?: number; parts: Uint8Array[]; got: number }
  >();
  #decoder = new TextDecoder();

  /** The command `frame` completes, if any. */
  push(frame: Frame): ClientCommand | undefined {
    const { type, channel, payload } = frame;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    if (type === 1 && payload.length >= 4) {
      const classId = view.getUint16(0);
      const methodId = view.getUint16(2);
      if (classId === 60 && methodId === 40) {
        // reserved short, exchange shortstr, routing key shortstr, bits
        const exchangeEnd = 7 + payload[6]!;
        const keyEnd = exchangeEnd + 1 + payload[exchangeEnd]!;
        this.#publishing.set(channel, {
          exchange: this.#decoder.decode(payload.subarray(7, exchangeEnd)),
          routingKey: this.#decoder.decode(payload.subarray(exchangeEnd + 1, keyEnd)),
          parts: [],
          got: 0,
        });
        return undefined;
      }
      if (classId === 60 && methodId === 80) {
        const deliveryTag = Number(view.getBigUint64(4));
        return { kind: "ack", channel, deliveryTag, multiple: (payload[12]! & 1) === 1 };
      }
      return { kind: "method", channel, classId, methodId };
    }
    const publish = this.#publishing.get(channel);
    if (publish === undefined) return undefined;
    if (type === 2) publish.size = Number(view.getBigUint64(4)); // class, weight, body size
    else if (type === 3) {
      publish.parts.push(payload);
      publish.got += payload.length;
    } else return undefined;
    if (publish.size === undefined || publish.got < publish.size) return undefined;
    this.#publishing.delete(channel);
    const body = new Uint8Array(publish.got);
    let offset = 0;
    for (const part of publish.parts) {
      body.set(part, offset);
      offset += part.length;
    }
    const { exchange, routingKey } = publish;
    return { kind: "publish", channel, exchange, routingKey, body };
  }
}

/** A client connection and its upstream, closed together. */
interface Pair {
  /** 1 for the first client the proxy accepted, and so on. */
  number: number;
  client: Deno.TcpConn;
  upstream: Deno.TcpConn | undefined;
  closed: boolean;
  /** The client died: the upstream is shut for writing and read until the broker closes it. */
  ending: boolean;
  /** Resolves when the pair is closed, to wake a forwarding loop held by a pause. */
  whenClosed: Promise<void>;
  markClosed: () => void;
}

class TcpProxy implements Proxy {
  readonly port: number;
  readonly died: Promise<void>;
  #target: ProxyTarget;
  #tap: ProxyOptions["tap"];
  #dieAt: ProxyOptions["dieAt"];
  #dieWhen: ProxyOptions["dieWhen"];
  #dead = false;
  #markDied: () => void;
  #listener: Deno.TcpListener;
  #pairs = new Set<Pair>();
  #accepted = 0;
  #tasks = new Set<Promise<void>>();
  #gate: { promise: Promise<void>; open: () => void } | undefined;
  #closing: Promise<void> | undefined;

  constructor(target: ProxyTarget, options: ProxyOptions) {
    this.#target = target;
    this.#tap = options.tap;
    this.#dieAt = options.dieAt;
    this.#dieWhen = options.dieWhen;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.died = promise;
    this.#markDied = resolve;
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
    this.#stopListening();
    this.cut();
    this.resume();
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  #stopListening(): void {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
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
      if (this.#closing !== undefined || this.#dead) {
        client.close();
        return;
      }
      this.#track(this.#serve(client));
    }
  }

  async #serve(client: Deno.TcpConn): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const pair: Pair = {
      number: ++this.#accepted,
      client,
      upstream: undefined,
      closed: false,
      ending: false,
      whenClosed: promise,
      markClosed: resolve,
    };
    this.#pairs.add(pair);
    try {
      const upstream = await Deno.connect(this.#target);
      if (pair.closed || pair.ending) {
        upstream.close();
        return;
      }
      pair.upstream = upstream;
      await Promise.all([
        this.#forward(pair, client, upstream, true),
        this.#forward(pair, upstream, client, false),
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
    fromClient: boolean,
  ): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    const frames = fromClient && this.#dieAt ? new FrameReader() : undefined;
    const commands = new CommandReader();
    try {
      while (!pair.closed) {
        const read = await from.read(buffer);
        if (read === null) break;
        if (pair.ending) {
          if (fromClient) break;
          continue; // What the broker says to a dead client goes nowhere.
        }
        let chunk = buffer.subarray(0, read);
        if (fromClient) this.#tap?.(chunk, pair.number);
        let death = false;
        for (const { frame, start, end } of frames?.push(chunk) ?? []) {
          const command = commands.push(frame);
          const point = command && this.#dieAt!(command);
          if (point === undefined) continue;
          chunk = chunk.subarray(0, Math.max(0, point === "before" ? start : end));
          death = true;
          break;
        }
        while (this.#gate !== undefined && !pair.closed) {
          await Promise.race([this.#gate.promise, pair.whenClosed]);
        }
        if (pair.closed) break;
        let written = 0;
        while (written < chunk.length) written += await to.write(chunk.subarray(written));
        if (death) {
          await this.#dieWhen?.();
          this.#die();
          break;
        }
      }
    } catch {
      // The pair was cut or a peer reset the connection.
    } finally {
      // A dead client's upstream stays open for reading until the broker closes it.
      if (!pair.ending || !fromClient) this.#closePair(pair);
    }
  }

  /**
   * The client died: every upstream is shut for writing, so that the broker reads all it was
   * sent and then the end of the stream (closing a socket with unread bytes would send a reset
   * instead); every client is closed; no new client is accepted.
   */
  #die(): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#stopListening();
    for (const pair of this.#pairs) {
      pair.ending = true;
      try {
        pair.client.close();
      } catch {
        // Already closed.
      }
      pair.upstream?.closeWrite().catch(() => {}); // Already closed: the broker saw the end.
    }
    this.#markDied();
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
