/**
 * What a private RabbitMQ node is to its users: the options that start one, the node itself
 * (crash it, freeze it, restart it, ask it things through `rabbitmqctl`) and its error. The node is
 * implemented in `_rabbit_node.ts`; `startPrivateNode` in `../local_broker.ts` starts one.
 * @module
 */

import { TareasError } from "../../core/errors.ts";

/**
 * Thrown when a private node fails to start, or `rabbitmqctl` fails against it; the message may
 * quote the node's log over several lines.
 */
export class PrivateNodeError extends TareasError {
  override name = "PrivateNodeError";
}

/** Options for `startPrivateNode` (`../local_broker.ts`). */
export interface PrivateNodeOptions {
  /**
   * The `rabbitmq-server` script to run. It must run the node as the calling user (Debian's
   * `/usr/sbin/rabbitmq-server` switches to the `rabbitmq` user, which cannot use our data dir).
   * @default {"/usr/lib/rabbitmq/bin/rabbitmq-server" if it exists, else `rabbitmq-server` on PATH}
   */
  serverPath?: string;
  /**
   * How long to wait for the node's AMQP port to accept connections, on start and on restart.
   * @default {60_000}
   */
  startTimeoutMs?: number;
  /**
   * The start of the node name; a random suffix and `@localhost` are appended.
   * @default {"tareas"}
   */
  namePrefix?: string;
  /**
   * The whole node name, such as `tareas-1@localhost`; overrides `namePrefix`.
   * @default {`${namePrefix}-<random hex>@localhost`}
   */
  name?: string;
  /**
   * The AMQP port on 127.0.0.1.
   * @default {a free port (never 5672 or another port of the main node)}
   */
  port?: number;
  /**
   * The Erlang distribution port (what peers and `rabbitmqctl` connect to).
   * @default {a free port (never 25672 or 4369)}
   */
  distPort?: number;
  /**
   * The Erlang cookie; nodes that cluster together must share it.
   * @default {20 random capital letters}
   */
  cookie?: string;
  /**
   * Lines appended to the node's own `rabbitmq.conf`, after the listener line (for example
   * `max_message_size = 4194304`).
   * @default {""}
   */
  config?: string;
}

/** Options for {@linkcode PrivateNode.kill}. */
export interface KillOptions {
  /**
   * Flush the quorum queue metadata tables (Ra's `names.dets` and `meta.dets`) to disk before the
   * SIGKILL. RabbitMQ 3.10 buffers them in memory (auto-save every 0.5 s and 5 s) and a crash can
   * drop a recently declared quorum queue's registration: on restart the queue comes back empty and
   * never elects a leader, so even confirmed messages are gone and new publishes are never
   * confirmed. Measured on 3.10.8 here, killing right after the confirms of 10 messages to a new
   * quorum queue: 4 of 4 queues lost without the flush, 0 of 4 with it. Only those metadata tables
   * are flushed, never message data. Set `false` to reproduce the broker bug.
   * @default {true}
   */
  flushQuorumMetadata?: boolean;
}

/** A RabbitMQ node running as a child process of this one, on its own ports and data dir. */
export interface PrivateNode extends AsyncDisposable {
  /** `amqp://guest:guest@127.0.0.1:<port>`. */
  readonly url: string;
  /** The AMQP port on 127.0.0.1. */
  readonly port: number;
  /** The Erlang distribution port (what `rabbitmqctl` talks to). */
  readonly distPort: number;
  /** The Erlang node name, such as `tareas-1a2b3c4d@localhost`. */
  readonly name: string;
  /** The node's data dir (mnesia, logs, pid file, cookie); removed by `stop()`. */
  readonly dataDir: string;
  /** Whether the node's processes are running (false after `kill()` and `stop()`; true when frozen). */
  readonly running: boolean;
  /** Whether {@linkcode PrivateNode.freeze} stopped the node and no `thaw()` or `kill()` followed. */
  readonly frozen: boolean;
  /**
   * Kills the node with SIGKILL, as a crash would, and resolves once its processes have exited
   * (gone from `/proc` or zombies waiting to be reaped). Does nothing when the node is not running.
   * A frozen node is killed without the metadata flush, which it could not answer.
   */
  kill(options?: KillOptions): Promise<void>;
  /**
   * Stops the node's `beam.smp` with SIGSTOP: its sockets stay open but nothing answers, as on a
   * hung machine (peers and clients notice through heartbeats and net ticks only). Resolves once
   * the kernel shows it stopped.
   *
   * @throws {PrivateNodeError} when the node is not running.
   */
  freeze(): Promise<void>;
  /** Resumes a frozen node with SIGCONT. Does nothing when it is not frozen. */
  thaw(): Promise<void>;
  /** The resident memory in bytes of the node's processes (beam.smp and its helpers); 0 when not running. */
  rss(): Promise<number>;
  /**
   * Starts the node again on the same data dir, ports and name (first killing it, as
   * {@linkcode PrivateNode.kill} does, if it runs) and
   * resolves once its AMQP port accepts connections. Durable queues and confirmed messages survive.
   */
  restart(): Promise<void>;
  /** Closes every client connection through `rabbitmqctl close_all_connections`. */
  closeAllConnections(reason?: string): Promise<void>;
  /**
   * Runs `rabbitmqctl -n <name> ...args` against the node and returns its standard output.
   * @example
   * ```ts
   * await node.rabbitmqctl(["stop_app"]);
   * ```
   */
  rabbitmqctl(args: string[]): Promise<string>;
  /** The last lines of the node's captured output and log file, for failure messages. */
  logTail(lines?: number): Promise<string>;
  /** Kills every process of the node and removes its data dir. Idempotent. */
  stop(): Promise<void>;
  /** Same as {@linkcode PrivateNode.stop}. */
  close(): Promise<void>;
}
