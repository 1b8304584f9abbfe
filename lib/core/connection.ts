/**
 * The broker connection: amqplib's built-in recovery (backoff with jitter, `setup` run again after
 * every reconnect), heartbeats, a short connect timeout, the classification of failures that
 * retrying cannot fix, and, for a cluster, moving on to the next node of the URL list whenever a
 * connection is lost or fails. Every connection gets the header guard of `header_guard.ts` and
 * the socket corking of `corking.ts`.
 * @module
 */
import amqp, { type ChannelModel, type Options } from "../deps/amqplib.ts";
import { isAccessRefused, isNotAllowed } from "./broker_errors.ts";
import { writeInPasses } from "./corking.ts";
import { BrokerUnreachableError, ConfigError, errorMessage } from "./errors.ts";
import { guardHeaderFrames } from "./header_guard.ts";
import { log } from "./log.ts";
import { printable } from "./text.ts";
import { type BrokerAddress, parseBrokerUrls } from "./url.ts";

/** How long a TCP connect plus the AMQP handshake may take before the next node is tried. */
export const CONNECT_TIMEOUT_MS = 3_000;

/**
 * How long the first connection may take in all, over every node of the URL list and every retry,
 * before the command gives up (exit 1): a list of 1,000 unreachable nodes took 774 s without it.
 * Two rounds of a 3-node cluster whose nodes all time out fit in it (7 attempts of
 * {@linkcode CONNECT_TIMEOUT_MS} and their backoff: about 24 s).
 */
export const START_TIMEOUT_MS = 30_000;

/** How long declaring the topology and starting consumers may take on a new connection. */
export const SETUP_TIMEOUT_MS = 5_000;

/** Options of {@linkcode openConnection}. */
export interface ConnectionOptions {
  /** Broker URL, or a comma-separated list of a cluster's nodes; printed only redacted. */
  url: string;
  /** Heartbeat interval in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Connection name shown by the broker's management tools. */
  name: string;
  /**
   * Runs after every (re)connection, with the node (`host:port`) connected to: declare topology,
   * open channels, start consumers. A {@linkcode ConfigError} thrown here stops recovery for
   * good; other errors are retried.
   */
  setup: (model: ChannelModel, node: string) => Promise<void>;
  /**
   * Retries of the first connection before giving up with exit code 1 (and it gives up after
   * {@linkcode START_TIMEOUT_MS} in any case).
   * @default {4, or twice the number of URLs when that is more}
   */
  initialRetries?: number;
}

/** A recovering connection to the broker. */
export interface Connection extends AsyncDisposable {
  /** Rejects when the connection gives up for good: a configuration error or exhausted retries. */
  readonly failed: Promise<never>;
  /** The node (`host:port`) of the URL list it is connected to, or trying. */
  readonly node: string;
  /** Closes the connection and stops recovering. Idempotent. */
  close(): Promise<void>;
}

/**
 * Connects to the broker, retrying a few times (over every node of a list), and keeps
 * reconnecting after that, forever. Each process starts at a random node of a list, to spread
 * connections, and moves on to the next one on every failure.
 *
 * @throws {UsageError} when the URL is not a valid amqp(s) URL or list of them.
 * @throws {ConfigError} when credentials or the virtual host are refused, or `setup` throws one.
 * @throws {BrokerUnreachableError} when the first connection fails after its retries, or has not
 *   succeeded within {@linkcode START_TIMEOUT_MS}.
 * @example
 * ```ts
 * await using connection = await openConnection({ url, name: "producer", setup: async (model) => {
 *   const channel = await model.createConfirmChannel();
 *   await declareTopology(channel, queue);
 * } });
 * ```
 */
export async function openConnection(options: ConnectionOptions): Promise<Connection> {
  const ring = new NodeRing(parseBrokerUrls(options.url), options.heartbeat ?? 15);
  let fail!: (error: Error) => void;
  const failed = new Promise<never>((_, reject) => fail = reject);
  failed.catch(() => {});
  const recovering = await connectRecovering(options, ring);
  const giveUp = (error: Error) => {
    fail(error);
    recovering.close().catch(() => {});
  };
  const progress = followRecovery(recovering, ring, giveUp);
  let closing: Promise<void> | undefined;
  const connection: Connection = {
    failed,
    get node() {
      return ring.current.node;
    },
    close: () => closing ??= recovering.close().catch(() => {}),
    [Symbol.asyncDispose]: () => connection.close(),
  };
  // Over every node and retry: a long list of unreachable nodes must not take minutes.
  const deadline = setTimeout(() =>
    giveUp(
      new BrokerUnreachableError(
        `Cannot reach the broker at ${ring.all} within ${START_TIMEOUT_MS / 1000} s: ` +
          progress.lastCause,
      ),
    ), START_TIMEOUT_MS);
  try {
    await Promise.race([recovering.waitForConnect(), failed]);
  } catch (error) {
    await connection.close();
    throw error;
  } finally {
    clearTimeout(deadline);
  }
  return connection;
}

/**
 * The nodes of the URL list and the one connected to, or tried next. Each process starts at a
 * random node, to spread connections, and moves on to the next one on every failure.
 */
class NodeRing {
  /**
   * amqplib reads this object at every (re)connection attempt: pointing it at another node is
   * all it takes to move along the list.
   */
  readonly target: Options.Connect = {};
  /** The whole list, for a log line or an error message. */
  readonly all: string;
  readonly #nodes: BrokerAddress[];
  readonly #heartbeat: number;
  #index: number;

  /** Starts at a random node of `nodes`, connecting with `heartbeat` (seconds). */
  constructor(nodes: BrokerAddress[], heartbeat: number) {
    this.#nodes = nodes;
    this.#heartbeat = heartbeat;
    // One short line however long the list (1,000 nodes made lines of 33 KB): up to three in full.
    this.all = nodes.length <= 3
      ? nodes.map((node) => node.redacted).join(", ")
      : `${nodes[0]!.redacted} and ${nodes.length - 1} more nodes`;
    this.#index = Math.floor(Math.random() * nodes.length);
    this.#point(this.current);
  }

  /** How many nodes the list has. */
  get size(): number {
    return this.#nodes.length;
  }

  /** The node connected to, or tried next. */
  get current(): BrokerAddress {
    return this.#nodes[this.#index]!;
  }

  /** Moves on to the next node of the list (the first after the last). */
  next(): void {
    this.#index = (this.#index + 1) % this.#nodes.length;
    this.#point(this.current);
  }

  #point(node: BrokerAddress): void {
    Object.assign(this.target, {
      protocol: node.protocol,
      hostname: node.hostname,
      port: node.port,
      username: node.username,
      password: node.password,
      vhost: node.vhost,
      heartbeat: this.#heartbeat,
    });
  }
}

/**
 * amqplib's recovering connection to the nodes of `ring`, not yet connected (listeners go on
 * first). Its type, amqplib's `RecoveringChannelModel`, is the one this function returns.
 */
function connectRecovering(options: ConnectionOptions, ring: NodeRing) {
  return amqp.connect(ring.target, {
    clientProperties: { connection_name: options.name },
    noDelay: true, // Nagle plus delayed ACKs would hold back small frames such as acks by ~40 ms.
    timeout: CONNECT_TIMEOUT_MS,
    recovery: {
      // At most half a second between attempts (with jitter, 0.65 s): back within a second of
      // the broker, and a broker that is down gets two refused connects a second per process.
      initialDelay: 100,
      maxDelay: 500,
      factor: 2,
      jitter: 0.3,
      initialMaxRetries: options.initialRetries ?? Math.max(4, 2 * ring.size),
      maxRetries: Infinity,
      waitForConnect: false,
      setup: (model: ChannelModel) => setUp(model, () => options.setup(model, ring.current.node)),
    },
  });
}

type RecoveringModel = Awaited<ReturnType<typeof connectRecovering>>;

/**
 * Prepares a new connection: the corking and the header guard on its socket, then `setup`,
 * which must finish within {@linkcode SETUP_TIMEOUT_MS}.
 */
async function setUp(model: ChannelModel, setup: () => Promise<void>): Promise<void> {
  // A cluster electing a queue leader can leave a declare or a consume unanswered: give
  // up on this connection after a while, and start over.
  let timer: ReturnType<typeof setTimeout> | undefined;
  writeInPasses(model);
  // Before any channel opens: a header amqplib cannot decode must not drop the connection.
  guardHeaderFrames(model);
  try {
    await Promise.race([
      setup(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Setup took more than ${SETUP_TIMEOUT_MS} ms`)),
          SETUP_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Follows the connection's recovery: logs it, moves `ring` to the next node on every failure, and
 * calls `giveUp` on a failure retrying cannot fix or once the first connection's retries are spent.
 * Returns the cause of the last failed attempt, as it changes.
 */
function followRecovery(
  recovering: RecoveringModel,
  ring: NodeRing,
  giveUp: (error: Error) => void,
): { readonly lastCause: string } {
  const logger = log("connection");
  const progress = { lastCause: "no answer" };
  let connectedOnce = false;
  let retrying = false;
  recovering.on("connect", () => {
    logger.info("Connected to {url}", { url: ring.current.redacted });
    connectedOnce = true;
    retrying = false;
  });
  recovering.on("connect-failed", (error: Error) => {
    const fatal = fatalError(error, ring.current);
    if (fatal) return giveUp(fatal);
    const cause = errorMessage(error);
    progress.lastCause = cause;
    // One line while retrying; the attempts themselves at debug level.
    if (!retrying) {
      retrying = true;
      logger.warn("Cannot reach {url} ({cause}); retrying", {
        url: connectedOnce ? ring.current.redacted : ring.all,
        cause,
      });
    } else {
      logger.debug("Cannot reach {url} ({cause})", { url: ring.current.redacted, cause });
    }
    ring.next();
  });
  recovering.on("disconnect", (error: Error) => {
    logger.warn("Lost connection to {url}: {cause}; reconnecting", {
      url: ring.current.redacted,
      cause: errorMessage(error),
    });
    retrying = true;
    ring.next();
  });
  recovering.on("reconnect-scheduled", ({ attempt, delay }) => {
    logger.debug("Reconnect attempt {attempt} in {delay} ms", { attempt, delay });
  });
  recovering.on("reconnect-failed", (error: Error) => {
    giveUp(
      new BrokerUnreachableError(`Cannot reach the broker at ${ring.all}: ${errorMessage(error)}`, {
        cause: error,
      }),
    );
  });
  recovering.on("blocked", (reason: string) => {
    logger.warn("The broker blocked publishing: {reason}", { reason });
  });
  recovering.on(
    "error",
    (error: Error) => logger.debug("Connection error: {cause}", { cause: errorMessage(error) }),
  );
  recovering.on(
    "handler-error",
    (error: Error) => logger.error("Event handler failed: {error}", { error }),
  );
  return progress;
}

/** A failure retrying cannot fix, as a one-line configuration error; undefined for the others. */
function fatalError(error: Error, node: BrokerAddress): Error | undefined {
  if (error instanceof ConfigError) return error;
  if (isAccessRefused(error)) {
    return new ConfigError(
      `The broker at ${node.redacted} refused the credentials of user ` +
        `"${printable(node.username)}" ` +
        "(ACCESS_REFUSED)",
      { cause: error },
    );
  }
  // The broker answers connection.open with a close: the virtual host is missing or forbidden.
  if (isNotAllowed(error)) {
    return new ConfigError(
      `The broker at ${node.redacted} refused access to virtual host "${printable(node.vhost)}": ` +
        `it does not exist, or user "${printable(node.username)}" has no permissions on it`,
      { cause: error },
    );
  }
  return undefined;
}
