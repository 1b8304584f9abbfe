/**
 * The broker a verify run checks: the one at `AMQP_URL`, or a private node (or 3-node cluster)
 * that verify starts, kills with kill -9 mid-run and restarts. And what verify asks of it on a
 * connection of its own: its version, whether the run's queue is new, the name of its producer's
 * reply queue, what is left in the queues at the end, and deleting them.
 * @module
 */
import type { ChannelModel, GetMessage } from "../../deps/amqplib.ts";
import { isNotFound, withChannel } from "../../core/broker_errors.ts";
import { type Connection, openConnection } from "../../core/connection.ts";
import { UsageError } from "../../core/errors.ts";
import { eventsExchange } from "../../core/events.ts";
import type { Producer } from "../../core/producer/mod.ts";
import { parseReply, type TaskResult } from "../../core/results.ts";
import { printable } from "../../core/text.ts";
import { deadQueue } from "../../core/topology.ts";
import { redactUrl } from "../../core/url.ts";
import { canStartPrivateNode, startPrivateNode } from "../local_broker.ts";
import { startCluster } from "../local_cluster.ts";
import type { BrokerMode, BrokerVersion, Census } from "./types.ts";

export type { BrokerMode, BrokerVersion } from "./types.ts";

/** The broker of a run. */
export interface RunBroker extends AsyncDisposable {
  /** Its URL (a comma-separated list for a cluster): print it through `redactUrl`. */
  readonly url: string;
  /** What it is, for the report: "amqp://guest:***@127.0.0.1:5672", "a private node …". */
  readonly describe: string;
  /** The kill -9 and restart it takes once mid-run, for a private node or cluster. */
  readonly fault: BrokerFault | undefined;
  /** Stops a private node or cluster; nothing for the given broker. Idempotent. */
  close(): Promise<void>;
}

/** A kill -9 of a private node, or of the node leading the queue on a private cluster. */
export interface BrokerFault {
  /** `"broker"` for a single node, `"node"` for a cluster's leader. */
  readonly kind: "broker" | "node";
  /**
   * Syncs the node's quorum queue metadata to disk, as the tests do before a kill (RabbitMQ 3.10
   * can lose a queue declared seconds before a crash, see `KillOptions` of local_broker.ts), then
   * SIGKILLs it; resolves with the node's name once its processes have exited.
   */
  kill(queue: string): Promise<string>;
  /** Starts the killed node again on its data and resolves once it takes connections. */
  restart(): Promise<void>;
}

/**
 * The broker for a run: `url` as given, or a private node or cluster started here.
 *
 * @throws {UsageError} for `restart` or `cluster` when rabbitmq-server is not installed.
 * @throws {PrivateNodeError} when a private node fails to start.
 */
export async function openRunBroker(mode: BrokerMode, url: string): Promise<RunBroker> {
  if (mode === "given") {
    return {
      url,
      describe: redactUrl(url),
      fault: undefined,
      close: () => Promise.resolve(),
      [Symbol.asyncDispose]: () => Promise.resolve(),
    };
  }
  if (!await canStartPrivateNode()) {
    throw new UsageError(
      `Cannot use --${mode === "cluster" ? "cluster" : "broker-restart"}: it needs ` +
        "rabbitmq-server installed here to start a private node (verify never kills the broker " +
        "at AMQP_URL)",
    );
  }
  if (mode === "cluster") {
    const cluster = await startCluster({ namePrefix: "tareas-verify" });
    let killed: number | undefined;
    return {
      url: cluster.url,
      describe: `a private 3-node cluster started for this run (${redactUrl(cluster.urls[0]!)}, …)`,
      fault: {
        kind: "node",
        kill: async (queue) => {
          const leader = await cluster.leader(queue);
          killed = leader;
          await cluster.kill(leader); // Syncs the quorum metadata first (KillOptions).
          return cluster.nodes[leader]!.name;
        },
        restart: () => killed === undefined ? Promise.resolve() : cluster.start(killed),
      },
      close: () => cluster.stop(),
      [Symbol.asyncDispose]: () => cluster.stop(),
    };
  }
  const node = await startPrivateNode({ namePrefix: "tareas-verify" });
  return {
    url: node.url,
    describe: `a private node started for this run (${redactUrl(node.url)})`,
    fault: {
      kind: "broker",
      kill: async () => {
        await node.kill(); // Syncs the quorum metadata first (KillOptions).
        return node.name;
      },
      restart: () => node.restart(),
    },
    close: () => node.stop(),
    [Symbol.asyncDispose]: () => node.stop(),
  };
}

/** Most messages read back from one queue at the end of a run. */
const MAX_CENSUS = 100_000;

/** Verify's own connection to the broker, for everything but publishing and watching. */
export class Admin implements AsyncDisposable {
  #connection: Connection;
  #model: () => ChannelModel;

  private constructor(connection: Connection, model: () => ChannelModel) {
    this.#connection = connection;
    this.#model = model;
  }

  /** Connects (and reconnects after a broker restart, like every tareas connection). */
  static async open(url: string, heartbeat: number): Promise<Admin> {
    let model: ChannelModel | undefined;
    const connection = await openConnection({
      url,
      heartbeat,
      name: "tareas verify",
      setup: (current) => {
        model = current;
        return Promise.resolve();
      },
    });
    return new Admin(connection, () => model!);
  }

  /** The broker's product and version from the connection's server properties (untrusted). */
  version(): BrokerVersion {
    const properties = this.#model().connection.serverProperties ?? {};
    const show = (value: unknown) =>
      typeof value === "string" && value !== "" ? printable(value.slice(0, 100)) : "unknown";
    return { product: show(properties.product), version: show(properties.version) };
  }

  /**
   * Refuses a queue that exists: verify deletes its queue at the end, so it must be its own.
   *
   * @throws {UsageError} when `queue` exists.
   */
  async checkNew(queue: string): Promise<void> {
    try {
      await withChannel(this.#model(), (channel) => channel.checkQueue(queue));
    } catch (error) {
      if (isNotFound(error)) return;
      throw error;
    }
    throw new UsageError(
      `Queue "${printable(queue)}" already exists: verify needs a queue of its own, which it ` +
        "deletes at the end; leave out --queue for a fresh one",
    );
  }

  /**
   * The name of `producer`'s reply queue, which it does not tell: from a probe task published
   * before any worker runs and taken back at once (its `reply_to`).
   */
  async replyQueueOf(producer: Producer): Promise<string> {
    const probe = `verify-probe-${crypto.randomUUID()}`;
    await producer.enqueue({ probe: true }, { id: probe });
    return await withChannel(this.#model(), async (channel) => {
      const message = await channel.get(producer.queue, { noAck: true });
      const replyTo = message === false ? undefined : message.properties.replyTo;
      if (message === false || message.properties.messageId !== probe || !replyTo) {
        throw new Error(`The probe task did not come back from queue ${producer.queue}`);
      }
      return String(replyTo);
    });
  }

  /**
   * Reads back (and removes) what is left in the run's queues once its workers stopped and its
   * producer closed: tasks still queued, dead letters, unread results.
   */
  async census(queue: string, replyQueue: string | undefined): Promise<Census> {
    const queued = new Set<string>();
    const deadLettered = new Map<string, string>();
    const results: TaskResult[] = [];
    await this.#drain(queue, (message) => {
      const id = message.properties.messageId;
      if (typeof id === "string") queued.add(id);
    });
    await this.#drain(deadQueue(queue), (message) => {
      const id = message.properties.messageId;
      const reason = message.properties.headers?.["x-tareas-reason"];
      if (typeof id === "string") {
        deadLettered.set(id, typeof reason === "string" ? reason.slice(0, 2_000) : "no reason");
      }
    });
    if (replyQueue !== undefined) {
      await this.#drain(replyQueue, (message) => {
        const reply = parseReply(message);
        if (reply !== undefined && reply.status !== "progress") results.push(reply);
      });
    }
    return { queued, deadLettered, results };
  }

  /**
   * Takes every message of `queue` (up to {@linkcode MAX_CENSUS}) on a channel of its own,
   * handing each to `read`; nothing for a queue that does not exist.
   */
  async #drain(queue: string, read: (message: GetMessage) => void): Promise<void> {
    try {
      await withChannel(this.#model(), async (channel) => {
        for (let taken = 0; taken < MAX_CENSUS; taken++) {
          const message = await channel.get(queue, { noAck: true });
          if (message === false) return;
          read(message);
        }
      });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * Deletes the run's queue, its dead-letter queue, its producer's reply queue and its events
   * exchange, each on a channel of its own (one missing does not keep the others). The delays'
   * ladder (`tareas.delay.*`) is every work queue's: it stays.
   */
  async clean(queue: string, replyQueue: string | undefined): Promise<void> {
    const model = this.#model();
    for (const name of [queue, deadQueue(queue), replyQueue]) {
      if (name === undefined) continue;
      await withChannel(model, (channel) => channel.deleteQueue(name)).catch(() => {});
    }
    await withChannel(model, (channel) => channel.deleteExchange(eventsExchange(queue)))
      .catch(() => {});
  }

  /** Closes the connection. Idempotent. */
  close(): Promise<void> {
    return this.#connection.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
