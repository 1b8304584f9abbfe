/**
 * A RabbitMQ broker for the demo and the tests: the configured one when it answers, else a private
 * node started from the local `rabbitmq-server` installation, with its own ports, node name, Erlang
 * cookie and data directory, so that tests can kill and restart it without touching the main broker.
 *
 * The parts are in `local_broker/`: what a private node is (`private_node.ts`), the node itself
 * (`_rabbit_node.ts`), the wrapper and unload listener that kill a node left behind
 * (`_last_resort.ts`), its processes in `/proc` (`_processes.ts`) and what it needs of this
 * machine (`_host.ts`).
 *
 * @example
 * ```ts
 * import { findOrStartBroker } from "./lib/operate/local_broker.ts";
 *
 * await using broker = await findOrStartBroker();
 * console.log(`Using ${broker.url}`);
 * ```
 * @module
 */

import { ConfigError } from "../core/errors.ts";
import { DEFAULT_URL, parseBrokerUrls, redactUrl } from "../core/url.ts";
import {
  acceptsConnection,
  DEBIAN_SERVER_PATH,
  dirname,
  envVar,
  findServer,
  freePort,
  randomCookie,
} from "./local_broker/_host.ts";
import { RabbitNode } from "./local_broker/_rabbit_node.ts";
import {
  type PrivateNode,
  PrivateNodeError,
  type PrivateNodeOptions,
} from "./local_broker/private_node.ts";

export {
  type KillOptions,
  type PrivateNode,
  PrivateNodeError,
  type PrivateNodeOptions,
} from "./local_broker/private_node.ts";
export { freePort } from "./local_broker/_host.ts";
export { processesMentioning, statFields } from "./local_broker/_processes.ts";

/**
 * Thrown when no broker answers and none can be started: a set-up problem, so a
 * {@linkcode ConfigError} (the commands exit 2).
 */
export class BrokerUnavailableError extends ConfigError {
  override name = "BrokerUnavailableError";
  /** The broker URL that was probed, password redacted. */
  readonly url: string;

  /** Builds the one-line message for `url` (redacted here). */
  constructor(url: string, options?: ErrorOptions) {
    const redacted = redactUrl(url);
    super(
      `No RabbitMQ broker answers at ${redacted} and rabbitmq-server is not installed: ` +
        `run "docker compose up -d rabbitmq" or "sudo apt-get install rabbitmq-server"`,
      options,
    );
    this.url = redacted;
  }
}

/** Options for {@linkcode findOrStartBroker}. */
export interface FindBrokerOptions {
  /**
   * The broker to use when it accepts a TCP connection.
   * @default {Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672"}
   */
  url?: string;
  /**
   * How long the TCP probe of `url` may take.
   * @default {2_000}
   */
  probeTimeoutMs?: number;
  /**
   * How to start the private node when `url` does not answer.
   * @default {{}}
   */
  node?: PrivateNodeOptions;
}

/** A broker to connect to; `close()` stops it only if this process started it. */
export interface Broker extends AsyncDisposable {
  /** The AMQP URL, credentials included: print it through `redactUrl` from `lib/core/url.ts`. */
  readonly url: string;
  /** The private node when one was started, `undefined` when an existing broker answered. */
  readonly node: PrivateNode | undefined;
  /** Stops the private node if one was started; does nothing otherwise. Idempotent. */
  close(): Promise<void>;
}

/**
 * Returns a broker: the one at `options.url` (else `AMQP_URL`, else the local default) if it accepts
 * a TCP connection, else a private node started from the local RabbitMQ installation.
 *
 * @throws {BrokerUnavailableError} when nothing answers and `rabbitmq-server` is not installed.
 * @throws {PrivateNodeError} when the private node fails to start.
 * @example
 * ```ts
 * await using broker = await findOrStartBroker();
 * const connection = await amqp.connect(broker.url);
 * ```
 */
export async function findOrStartBroker(options: FindBrokerOptions = {}): Promise<Broker> {
  const url = options.url ?? envVar("AMQP_URL") ?? DEFAULT_URL;
  const { hostname, port } = parseBrokerUrls(url)[0]!;
  if (await acceptsConnection(hostname, port, options.probeTimeoutMs ?? 2_000)) {
    return {
      url,
      node: undefined,
      close: () => Promise.resolve(),
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
  }
  const serverPath = await findServer(options.node?.serverPath);
  if (serverPath === undefined) throw new BrokerUnavailableError(url);
  const node = await startPrivateNode({ ...options.node, serverPath });
  return {
    url: node.url,
    node,
    close: () => node.close(),
    [Symbol.asyncDispose]: () => node.close(),
  };
}

/**
 * Starts a private RabbitMQ node as a child process: random free AMQP and distribution ports, a
 * unique node name, its own Erlang cookie, config and temporary data dir. Resolves once its AMQP
 * port accepts connections. Always stop it (`await using`, or `stop()` in `finally`).
 *
 * @throws {PrivateNodeError} when rabbitmq-server is missing, exits early or is not ready in time.
 * @example
 * ```ts
 * await using node = await startPrivateNode();
 * await node.kill();    // crash
 * await node.restart(); // same data dir: durable queues and confirmed messages survive
 * ```
 */
export async function startPrivateNode(options: PrivateNodeOptions = {}): Promise<PrivateNode> {
  const serverPath = await findServer(options.serverPath);
  if (serverPath === undefined) {
    throw new PrivateNodeError(
      `Cannot start a private RabbitMQ node: rabbitmq-server is not installed ` +
        `(looked for ${options.serverPath ?? `${DEBIAN_SERVER_PATH} and rabbitmq-server on PATH`})`,
    );
  }
  const port = options.port ?? freePort([options.distPort ?? 0]);
  const distPort = options.distPort ?? freePort([port]);
  const name = options.name ??
    `${options.namePrefix ?? "tareas"}-${crypto.randomUUID().slice(0, 8)}@localhost`;
  const dataDir = await Deno.makeTempDir({ prefix: "tareas-rabbitmq-" });
  const node = new RabbitNode({
    serverPath,
    ctlPath: `${dirname(serverPath)}/rabbitmqctl`,
    name,
    port,
    distPort,
    dataDir,
    cookie: options.cookie ?? randomCookie(),
    config: options.config ?? "",
    startTimeoutMs: options.startTimeoutMs ?? 60_000,
  });
  try {
    await node.prepare();
    await node.start();
  } catch (error) {
    await node.stop();
    throw error;
  }
  return node;
}

/**
 * Whether a private node can be started here: `rabbitmq-server` is installed. Docker users may
 * have a broker to connect to but nothing to start private nodes from.
 */
export async function canStartPrivateNode(): Promise<boolean> {
  return await findServer(undefined) !== undefined;
}
