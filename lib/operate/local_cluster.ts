/**
 * A RabbitMQ cluster of three private nodes for tests, next to (and independent of) the main
 * broker: each node is a {@linkcode startPrivateNode} node on free ports with its own data dir, and
 * all three share an Erlang cookie and are joined into one cluster. Tests crash (`kill`), restart
 * (`start`) and hang (`freeze`) nodes to check that clients survive losing a quorum queue's leader.
 *
 * @example
 * ```ts
 * import { startCluster } from "./lib/operate/local_cluster.ts";
 *
 * await using cluster = await startCluster();
 * // AMQP_URL=amqp://guest:guest@127.0.0.1:40001,amqp://guest:guest@127.0.0.1:40003,...
 * const leader = await cluster.leader("my-quorum-queue");
 * await cluster.kill(leader);
 * await cluster.start(leader);
 * ```
 * @module
 */

import {
  canStartPrivateNode,
  freePort,
  type KillOptions,
  type PrivateNode,
  PrivateNodeError,
  startPrivateNode,
} from "./local_broker.ts";
import { delay } from "../core/async.ts";
import { errorMessage } from "../core/errors.ts";

/** How many nodes a cluster has. */
const SIZE = 3;

/** Options for {@linkcode startCluster}. */
export interface ClusterOptions {
  /**
   * The `rabbitmq-server` script to run (see {@linkcode startPrivateNode}).
   * @default {"/usr/lib/rabbitmq/bin/rabbitmq-server" if it exists, else `rabbitmq-server` on PATH}
   */
  serverPath?: string;
  /**
   * How long to wait for each step: a node's AMQP port to open (on start and on `start(i)`), the
   * nodes to see each other running, a queue's leader to be on a running node.
   * @default {120_000}
   */
  timeoutMs?: number;
  /**
   * The start of the node names: nodes are `<namePrefix>-<random hex>-<1..3>@localhost`.
   * @default {"tareas-cluster"}
   */
  namePrefix?: string;
  /**
   * Lines appended to every node's `rabbitmq.conf` (for example `max_message_size = 4194304`).
   * @default {""}
   */
  config?: string;
}

/** Options for {@linkcode Cluster.leader}. */
export interface LeaderOptions {
  /**
   * How long to wait for the queue to exist and be led by a running node.
   * @default {the cluster's `timeoutMs`}
   */
  timeoutMs?: number;
}

/** What a test may read about one node of a {@linkcode Cluster}. */
export interface ClusterNode {
  /** `amqp://guest:guest@127.0.0.1:<port>`. */
  readonly url: string;
  /** The AMQP port on 127.0.0.1. */
  readonly port: number;
  /** The Erlang distribution port. */
  readonly distPort: number;
  /** The Erlang node name, such as `tareas-cluster-1a2b3c4d-1@localhost`. */
  readonly name: string;
  /** The node's data dir; removed by the cluster's `stop()`. */
  readonly dataDir: string;
  /** Whether the node's processes run (false after `kill`, true while frozen). */
  readonly running: boolean;
  /** Whether the node is frozen (SIGSTOP) and not yet thawed. */
  readonly frozen: boolean;
  /** The resident memory in bytes of the node's processes; 0 when not running. */
  rss(): Promise<number>;
}

/** Three clustered private RabbitMQ nodes; node indexes are 0, 1 and 2. */
export interface Cluster extends AsyncDisposable {
  /** The nodes, in index order. */
  readonly nodes: readonly ClusterNode[];
  /** Each node's AMQP URL, in index order. */
  readonly urls: readonly string[];
  /** The URLs joined by commas, as `AMQP_URL` takes a cluster. */
  readonly url: string;
  /**
   * SIGKILLs node `index`'s beam.smp and its helper processes, as a crash would, and resolves once
   * they have exited (zombies count as exited). Does nothing when the node is not running.
   */
  kill(index: number, options?: KillOptions): Promise<void>;
  /**
   * Starts node `index` again on its data dir and resolves once its AMQP port accepts connections
   * and every running, unfrozen node sees all of them running. When it is already running, only
   * waits for that. To restart a cluster whose nodes are all down, start them concurrently: a
   * node waits for its peers before it opens its port.
   *
   * @throws {PrivateNodeError} when the node is frozen, or the wait times out.
   */
  start(index: number): Promise<void>;
  /** Stops node `index`'s beam.smp with SIGSTOP (a hung machine: sockets open, nothing answers). */
  freeze(index: number): Promise<void>;
  /** Resumes a frozen node with SIGCONT. */
  thaw(index: number): Promise<void>;
  /**
   * The index of the running node leading quorum queue `queue` (in the default vhost), from
   * `rabbitmqctl list_queues name leader` on a running, unfrozen node. While the queue is missing or
   * its leader is a killed node (an election in progress), waits.
   *
   * @throws {PrivateNodeError} when no running node leads the queue within the timeout.
   * @example
   * ```ts
   * const before = await cluster.leader(queue);
   * await cluster.kill(before);
   * const after = await cluster.leader(queue); // a survivor
   * ```
   */
  leader(queue: string, options?: LeaderOptions): Promise<number>;
  /** Runs `rabbitmqctl -n <node name> ...args` against node `index`; returns its output. */
  rabbitmqctl(index: number, args: string[]): Promise<string>;
  /** Whether node `index`'s processes run (frozen counts as running). */
  running(index: number): boolean;
  /** Kills every node and removes their data dirs. Idempotent. */
  stop(): Promise<void>;
  /** Same as {@linkcode Cluster.stop}. */
  close(): Promise<void>;
}

/**
 * Whether a cluster can be started here: `rabbitmq-server` is installed.
 *
 * @example
 * ```ts
 * Deno.test({ name: "...", ignore: !await canStartCluster(), fn: async () => {} });
 * ```
 */
export function canStartCluster(): Promise<boolean> {
  return canStartPrivateNode();
}

/**
 * Starts three private RabbitMQ nodes on free ports (never the main node's 5672, 25672 or epmd's
 * 4369) with a shared Erlang cookie, joins the second and third to the first (`stop_app`, `reset`,
 * `join_cluster`, `start_app`) and resolves once every node's `cluster_status` shows three running
 * nodes. Always stop it (`await using`, or `stop()` in `finally`); should this process exit without
 * doing so, even by SIGKILL, the nodes are killed and their data dirs removed all the same.
 *
 * @throws {PrivateNodeError} when rabbitmq-server is missing, a node fails to start or to join.
 * @example
 * ```ts
 * await using cluster = await startCluster();
 * const connection = await amqp.connect(cluster.urls[1]);
 * ```
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const random = crypto.randomUUID().replaceAll("-", "");
  const id = `${options.namePrefix ?? "tareas-cluster"}-${random.slice(0, 8)}`;
  const cookie = random.slice(8).toUpperCase();
  const taken: number[] = [];
  const take = () => {
    const port = freePort(taken);
    taken.push(port);
    return port;
  };
  const started = await Promise.allSettled(
    Array.from({ length: SIZE }, (_, index) =>
      startPrivateNode({
        ...(options.serverPath === undefined ? {} : { serverPath: options.serverPath }),
        name: `${id}-${index + 1}@localhost`,
        port: take(),
        distPort: take(),
        cookie,
        config: options.config ?? "",
        startTimeoutMs: timeoutMs,
      })),
  );
  const nodes = started.flatMap((result) => result.status === "fulfilled" ? [result.value] : []);
  const failure = started.find((result) => result.status === "rejected");
  if (failure !== undefined) {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    throw failure.reason;
  }
  const cluster = new RabbitCluster(nodes, timeoutMs);
  try {
    await cluster.join();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

class RabbitCluster implements Cluster {
  readonly nodes: readonly PrivateNode[];
  readonly urls: readonly string[];
  readonly url: string;
  #timeoutMs: number;
  #stopping: Promise<void> | undefined;

  constructor(nodes: PrivateNode[], timeoutMs: number) {
    this.nodes = nodes;
    this.urls = nodes.map((node) => node.url);
    this.url = this.urls.join(",");
    this.#timeoutMs = timeoutMs;
  }

  /** Joins every node to the first, one at a time, and waits until all see all running. */
  async join(): Promise<void> {
    const [first, ...others] = this.nodes;
    if (first === undefined) return;
    for (const node of others) {
      for (const args of [["stop_app"], ["reset"], ["join_cluster", first.name], ["start_app"]]) {
        await node.rabbitmqctl(args);
      }
    }
    await this.#waitUntilAllSeeEachOther();
  }

  kill(index: number, options?: KillOptions): Promise<void> {
    return this.#node(index).kill(options);
  }

  async start(index: number): Promise<void> {
    const node = this.#node(index);
    if (node.frozen) {
      throw new PrivateNodeError(`Cannot start RabbitMQ node ${node.name}: it is frozen, thaw it`);
    }
    if (!node.running) await node.restart();
    await this.#waitUntilAllSeeEachOther();
  }

  freeze(index: number): Promise<void> {
    return this.#node(index).freeze();
  }

  thaw(index: number): Promise<void> {
    return this.#node(index).thaw();
  }

  async leader(queue: string, options: LeaderOptions = {}): Promise<number> {
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const deadline = Date.now() + timeoutMs;
    let seen = "nothing asked yet";
    while (true) {
      const asked = this.#live()[0];
      if (asked === undefined) {
        throw new PrivateNodeError(
          `Cannot find the leader of queue "${queue}": no node is running and unfrozen`,
        );
      }
      try {
        const leader = queueLeader(
          await asked.rabbitmqctl(["list_queues", "name", "leader", ...JSON_ARGS]),
          queue,
        );
        const index = this.nodes.findIndex((node) => node.name === leader);
        if (index !== -1 && this.nodes[index]?.running) return index;
        seen = leader === undefined
          ? `node ${asked.name} lists no such queue`
          : `node ${asked.name} names leader ${leader || "(none)"}, which is not running`;
      } catch (error) {
        seen = errorMessage(error);
      }
      if (Date.now() >= deadline) {
        throw new PrivateNodeError(
          `Timed out after ${timeoutMs} ms waiting for a running node to lead queue "${queue}": ` +
            seen,
        );
      }
      await delay(200);
    }
  }

  rabbitmqctl(index: number, args: string[]): Promise<string> {
    return this.#node(index).rabbitmqctl(args);
  }

  running(index: number): boolean {
    return this.#node(index).running;
  }

  stop(): Promise<void> {
    this.#stopping ??= Promise.allSettled(this.nodes.map((node) => node.stop())).then(() => {});
    return this.#stopping;
  }

  close(): Promise<void> {
    return this.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #node(index: number): PrivateNode {
    const node = this.nodes[index];
    if (!Number.isInteger(index) || node === undefined) {
      throw new RangeError(
        `Node index must be an integer from 0 to ${this.nodes.length - 1}: got ${index}`,
      );
    }
    return node;
  }

  /** The nodes that can answer: running and not frozen. */
  #live(): PrivateNode[] {
    return this.nodes.filter((node) => node.running && !node.frozen);
  }

  /** Waits until every live node's `cluster_status` lists every live node as running. */
  async #waitUntilAllSeeEachOther(): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    let seen = "nothing asked yet";
    while (true) {
      const live = this.#live();
      const missing: string[] = [];
      for (const node of live) {
        try {
          const running = runningNodes(
            await node.rabbitmqctl(["cluster_status", ...JSON_ARGS]),
          );
          const absent = live.filter((other) => !running.includes(other.name));
          if (absent.length > 0) {
            missing.push(
              `${node.name} does not see ${absent.map((other) => other.name).join(", ")} running`,
            );
          }
        } catch (error) {
          missing.push(errorMessage(error));
        }
        if (missing.length > 0) break;
      }
      if (missing.length === 0) return;
      seen = missing.join("; ");
      if (Date.now() >= deadline) {
        throw new PrivateNodeError(
          `Timed out after ${this.#timeoutMs} ms waiting for the cluster's running nodes to see ` +
            `each other: ${seen}`,
        );
      }
      await delay(250);
    }
  }
}

/** rabbitmqctl arguments for JSON output without the informational first line. */
const JSON_ARGS = ["--formatter", "json", "--quiet", "--timeout", "10"];

/** The running nodes in `rabbitmqctl cluster_status --formatter json` output. */
function runningNodes(output: string): string[] {
  const status: unknown = JSON.parse(output);
  const running = typeof status === "object" && status !== null
    ? (status as Record<string, unknown>).running_nodes
    : undefined;
  if (!Array.isArray(running)) {
    throw new PrivateNodeError(`Unexpected cluster_status output: ${output.slice(0, 200)}`);
  }
  return running.map(String);
}

/**
 * The leader's node name for `queue` in `rabbitmqctl list_queues name leader --formatter json`
 * output; `undefined` when the queue is not listed.
 */
function queueLeader(output: string, queue: string): string | undefined {
  const rows: unknown = JSON.parse(output);
  if (!Array.isArray(rows)) {
    throw new PrivateNodeError(`Unexpected list_queues output: ${output.slice(0, 200)}`);
  }
  for (const row of rows) {
    if (typeof row !== "object" || row === null) continue;
    const { name, leader } = row as Record<string, unknown>;
    if (name === queue) return typeof leader === "string" ? leader : "";
  }
  return undefined;
}
