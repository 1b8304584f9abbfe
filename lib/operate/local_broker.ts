/**
 * A RabbitMQ broker for the demo and the tests: the configured one when it answers, else a private
 * node started from the local `rabbitmq-server` installation, with its own ports, node name, Erlang
 * cookie and data directory, so that tests can kill and restart it without touching the main broker.
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

import { ConfigError, errorMessage, TareasError } from "../core/errors.ts";
import { DEFAULT_URL, parseBrokerUrls, redactUrl } from "../core/url.ts";

/** Where Debian's package puts the server script that runs as the calling user. */
const DEBIAN_SERVER_PATH = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/**
 * Ports a private node must never take: the main node's AMQP, TLS, management and distribution
 * ports, and epmd's.
 */
const RESERVED_PORTS = new Set([4369, 5671, 5672, 15672, 25672]);

/** The ports that `rabbitmqctl` itself listens on (`RABBITMQ_CTL_DIST_PORT_MIN` to `_MAX`). */
const CTL_DIST_PORTS = { min: 35672, max: 35682 };

/** How many lines of the node's output and log an error message quotes. */
const LOG_TAIL_LINES = 40;

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

/**
 * Thrown when a private node fails to start, or `rabbitmqctl` fails against it; the message may
 * quote the node's log over several lines.
 */
export class PrivateNodeError extends TareasError {
  override name = "PrivateNodeError";
}

/** Options for {@linkcode startPrivateNode}. */
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

/** A broker to connect to; `close()` stops it only if this process started it. */
export interface Broker extends AsyncDisposable {
  /** The AMQP URL, credentials included: print it through `redactUrl` from `lib/core/url.ts`. */
  readonly url: string;
  /** The private node when one was started, `undefined` when an existing broker answered. */
  readonly node: PrivateNode | undefined;
  /** Stops the private node if one was started; does nothing otherwise. Idempotent. */
  close(): Promise<void>;
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
   * hung machine (peers and clients notice through heartbeats and net ticks only).
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

interface RabbitNodeInit {
  serverPath: string;
  ctlPath: string;
  name: string;
  port: number;
  distPort: number;
  dataDir: string;
  cookie: string;
  config: string;
  startTimeoutMs: number;
}

/**
 * The node's parent process, run by `/bin/sh -c` with the arguments server script, output file, pid
 * file and data dir. It runs the server and a watchdog that reads its standard input, a pipe from
 * this process that nothing writes to: end-of-file means this process has exited, however it
 * exited (even SIGKILL, when no unload listener runs), and the watchdog then kills the node and
 * removes its data dir, ignoring the SIGTERM the wrapper sends it when the server exits. A
 * background job's standard input is /dev/null unless redirected, hence fd 3.
 */
const WRAPPER = `
exec 3<&0
"$0" </dev/null 3<&- >>"$1" 2>&1 &
server=$!
{
  read -r _ <&3 || true
  trap '' TERM
  kill -KILL $(cat "$2" 2>/dev/null) $(pgrep -P "$server" 2>/dev/null) "$server" 2>/dev/null
  rm -rf "$3" 2>/dev/null || { sleep 1; rm -rf "$3"; }
} &
watchdog=$!
exec 3<&-
wait "$server"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
`;

/** Nodes started by this process and not yet stopped, killed on unload as a last resort. */
const liveNodes = new Set<RabbitNode>();
let unloadListenerAdded = false;

class RabbitNode implements PrivateNode {
  readonly url: string;
  readonly port: number;
  readonly distPort: number;
  readonly name: string;
  readonly dataDir: string;
  #serverPath: string;
  #ctlPath: string;
  #cookie: string;
  #config: string;
  #startTimeoutMs: number;
  #child: Deno.ChildProcess | undefined;
  #frozen = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  constructor(init: RabbitNodeInit) {
    this.port = init.port;
    this.distPort = init.distPort;
    this.name = init.name;
    this.dataDir = init.dataDir;
    this.url = `amqp://guest:guest@127.0.0.1:${init.port}`;
    this.#serverPath = init.serverPath;
    this.#ctlPath = init.ctlPath;
    this.#cookie = init.cookie;
    this.#config = init.config;
    this.#startTimeoutMs = init.startTimeoutMs;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  get #logFile(): string {
    return `${this.dataDir}/log/${this.name}.log`;
  }

  get #outputFile(): string {
    return `${this.dataDir}/server.out`;
  }

  get #pidFile(): string {
    return `${this.dataDir}/pid`;
  }

  /** Writes the node's config, plugins file and cookie into its data dir. */
  async prepare(): Promise<void> {
    const dir = this.dataDir;
    await Deno.mkdir(`${dir}/mnesia`, { recursive: true });
    await Deno.mkdir(`${dir}/log`, { recursive: true });
    await Deno.writeTextFile(`${dir}/plugins`, "[].\n");
    // Our own config and env files: the system ones may bind 5672 or set another node name.
    const extra = this.#config.trim();
    await Deno.writeTextFile(
      `${dir}/rabbitmq.conf`,
      `listeners.tcp.1 = 127.0.0.1:${this.port}\n${extra === "" ? "" : `${extra}\n`}`,
    );
    await Deno.writeTextFile(`${dir}/rabbitmq-env.conf`, "");
    // HOME is the data dir, so the node and rabbitmqctl share this cookie and leave ~ alone.
    await Deno.writeTextFile(`${dir}/.erlang.cookie`, this.#cookie, { mode: 0o400 });
  }

  /** Spawns the node and waits until its AMQP port accepts connections. */
  async start(): Promise<void> {
    await Deno.remove(this.#pidFile).catch(() => {});
    let child: Deno.ChildProcess;
    try {
      // The output goes to a file rather than a pipe, so that nothing here keeps this process alive
      // if the caller forgets stop(): it exits, and the unload listener kills the node. Should this
      // process die without unload (SIGKILL, a crash of Deno), the watchdog kills the node.
      child = new Deno.Command("/bin/sh", {
        args: ["-c", WRAPPER, this.#serverPath, this.#outputFile, this.#pidFile, this.dataDir],
        cwd: this.dataDir,
        env: this.#env(true),
        clearEnv: true,
        stdin: "piped",
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch (error) {
      throw new PrivateNodeError(`Cannot run ${this.#serverPath}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    child.unref();
    this.#child = child;
    liveNodes.add(this);
    addUnloadListener();
    await this.#waitUntilReady(child);
  }

  async kill(options: KillOptions = {}): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    if ((options.flushQuorumMetadata ?? true) && !this.#frozen) {
      // Best effort: a node that does not answer is killed all the same.
      await this.rabbitmqctl([
        "eval",
        `[dets:sync(T) || T <- dets:all(), is_atom(T), lists:prefix("ra_", atom_to_list(T))].`,
        "--timeout",
        "5",
      ]).catch(() => {});
    }
    this.#child = undefined;
    this.#frozen = false;
    await this.#terminate(child);
  }

  async freeze(): Promise<void> {
    const beam = this.#child === undefined ? undefined : await this.#beamPid();
    if (beam === undefined) {
      throw new PrivateNodeError(`Cannot freeze RabbitMQ node ${this.name}: it is not running`);
    }
    Deno.kill(beam, "SIGSTOP");
    this.#frozen = true;
  }

  async thaw(): Promise<void> {
    if (!this.#frozen) return;
    const beam = await this.#beamPid();
    if (beam !== undefined) killQuietly(beam, "SIGCONT");
    this.#frozen = false;
  }

  async rss(): Promise<number> {
    const child = this.#child;
    if (child === undefined) return 0;
    let bytes = 0;
    for (const pid of await descendants(child.pid)) {
      try {
        const status = await Deno.readTextFile(`/proc/${pid}/status`);
        bytes += Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0) * 1024;
      } catch {
        // Exited while we looked.
      }
    }
    return bytes;
  }

  async restart(): Promise<void> {
    if (this.#stopped) {
      throw new PrivateNodeError(`Cannot restart RabbitMQ node ${this.name}: it was stopped`);
    }
    await this.kill();
    await this.start();
  }

  async closeAllConnections(reason = "test"): Promise<void> {
    await this.rabbitmqctl(["close_all_connections", reason]);
  }

  async rabbitmqctl(args: string[]): Promise<string> {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(this.#ctlPath, {
        args: ["-n", this.name, ...args],
        cwd: this.dataDir,
        env: this.#env(false),
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (error) {
      throw new PrivateNodeError(`Cannot run ${this.#ctlPath}: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    const decoder = new TextDecoder();
    if (!output.success) {
      const detail = (decoder.decode(output.stderr) || decoder.decode(output.stdout)).trim();
      throw new PrivateNodeError(
        `rabbitmqctl ${args.join(" ")} failed against node ${this.name} ` +
          `with exit code ${output.code}: ${detail}`,
      );
    }
    return decoder.decode(output.stdout);
  }

  async logTail(lines = LOG_TAIL_LINES): Promise<string> {
    const sections = [];
    for (const file of [this.#outputFile, this.#logFile]) {
      let text = "";
      try {
        text = await Deno.readTextFile(file);
      } catch {
        // Not written yet: the node failed before it got there.
      }
      const tail = text.trimEnd().split("\n").slice(-lines).filter((line) => line !== "");
      sections.push(`--- ${file} (last ${lines} lines) ---`, ...(tail.length ? tail : ["(none)"]));
    }
    return sections.join("\n");
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  close(): Promise<void> {
    return this.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /** Synchronous last resort for the unload event: kill the processes, remove the data dir. */
  killSync(): void {
    const child = this.#child;
    if (child !== undefined) {
      for (const pid of [this.#beamPidSync(), ...descendantsSync(child.pid), child.pid]) {
        if (pid !== undefined) killQuietly(pid, "SIGKILL");
      }
    }
    try {
      Deno.removeSync(this.dataDir, { recursive: true });
    } catch {
      // Already gone or not ours to remove.
    }
  }

  async #stop(): Promise<void> {
    this.#stopped = true;
    try {
      await this.kill({ flushQuorumMetadata: false });
    } catch {
      // Keep going: the data dir must go either way.
    }
    try {
      await Deno.remove(this.dataDir, { recursive: true });
    } catch {
      // Already removed.
    }
    liveNodes.delete(this);
  }

  #env(server: boolean): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(envObject())) {
      // Inherited RabbitMQ or Erlang settings would mix with this node's.
      if (!key.startsWith("RABBITMQ_") && !key.startsWith("ERL_")) env[key] = value;
    }
    env.LANG ??= "C.UTF-8";
    env.HOME = this.dataDir;
    env.ERL_EPMD_ADDRESS = "127.0.0.1";
    env.RABBITMQ_CONF_ENV_FILE = `${this.dataDir}/rabbitmq-env.conf`;
    if (!server) return env;
    return {
      ...env,
      RABBITMQ_NODENAME: this.name,
      RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_CONFIG_FILE: `${this.dataDir}/rabbitmq.conf`,
      RABBITMQ_ADVANCED_CONFIG_FILE: `${this.dataDir}/advanced.config`,
      RABBITMQ_MNESIA_BASE: `${this.dataDir}/mnesia`,
      RABBITMQ_LOG_BASE: `${this.dataDir}/log`,
      RABBITMQ_PID_FILE: this.#pidFile,
      RABBITMQ_ENABLED_PLUGINS_FILE: `${this.dataDir}/plugins`,
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    };
  }

  async #waitUntilReady(child: Deno.ChildProcess): Promise<void> {
    const started = Date.now();
    const what = `RabbitMQ node ${this.name} to accept AMQP connections on 127.0.0.1:${this.port}`;
    let exited: Deno.CommandStatus | undefined;
    const exit = child.status.then((status) => {
      exited = status;
    });
    while (true) {
      if (exited !== undefined) {
        this.#child = undefined;
        throw new PrivateNodeError(
          `${this.#serverPath} exited with code ${exited.code} while waiting for ${what}:\n` +
            await this.logTail(),
        );
      }
      if (await acceptsConnection("127.0.0.1", this.port, 1_000)) return;
      if (Date.now() - started >= this.#startTimeoutMs) {
        const tail = await this.logTail();
        await this.kill({ flushQuorumMetadata: false });
        throw new PrivateNodeError(
          `Timed out after ${this.#startTimeoutMs} ms waiting for ${what}:\n${tail}`,
        );
      }
      await delayOr(100, exit);
    }
  }

  async #terminate(child: Deno.ChildProcess): Promise<void> {
    // The wrapper waits for the server script, which waits for beam.smp: kill beam.smp and
    // whatever it spawned (erl_child_setup, inet_gethost, the disk monitor's shell) and the
    // watchdog, then wait for the wrapper. epmd daemonizes: it is shared and left alone.
    const beam = await this.#beamPid();
    const targets = new Set<number>();
    if (beam !== undefined) targets.add(beam);
    for (const pid of await descendants(child.pid)) targets.add(pid);
    targets.delete(child.pid);
    if (targets.size === 0) targets.add(child.pid);
    for (const pid of targets) killQuietly(pid, "SIGKILL");
    child.ref(); // Wait for the exit even if nothing else keeps this process alive.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      child.status.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 10_000)),
    ]);
    clearTimeout(timer);
    if (!exited) {
      killQuietly(child.pid, "SIGKILL");
      await child.status;
    }
    await child.stdin.close().catch(() => {});
    // Orphaned helpers are reaped by PID 1, which may take a second here: a zombie is gone enough.
    const deadline = Date.now() + 10_000;
    while ([...targets].some(isAlive)) {
      if (Date.now() >= deadline) {
        const left = [...targets].filter(isAlive).join(", ");
        throw new PrivateNodeError(
          `Processes of RabbitMQ node ${this.name} survived SIGKILL for 10 s: ${left}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async #beamPid(): Promise<number | undefined> {
    try {
      return parsePid(await Deno.readTextFile(this.#pidFile));
    } catch {
      return undefined;
    }
  }

  #beamPidSync(): number | undefined {
    try {
      return parsePid(Deno.readTextFileSync(this.#pidFile));
    } catch {
      return undefined;
    }
  }
}

function addUnloadListener(): void {
  if (unloadListenerAdded) return;
  unloadListenerAdded = true;
  globalThis.addEventListener("unload", () => {
    for (const node of liveNodes) node.killSync();
  });
}

/** Whether `hostname:port` accepts a TCP connection within `timeoutMs`. */
async function acceptsConnection(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<boolean> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const conn = await Deno.connect({ hostname, port, signal: controller.signal });
    conn.close();
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether a private node can be started here: `rabbitmq-server` is installed. Docker users may
 * have a broker to connect to but nothing to start private nodes from.
 */
export async function canStartPrivateNode(): Promise<boolean> {
  return await findServer(undefined) !== undefined;
}

/** The server script to run: `explicit` if it exists, else Debian's, else `rabbitmq-server` on PATH. */
async function findServer(explicit: string | undefined): Promise<string | undefined> {
  if (explicit !== undefined) return await isFile(explicit) ? explicit : undefined;
  if (await isFile(DEBIAN_SERVER_PATH)) return DEBIAN_SERVER_PATH;
  for (const dir of (envVar("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    const candidate = `${dir}/rabbitmq-server`;
    if (await isFile(candidate)) return candidate;
  }
  return undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * A port on 127.0.0.1 that was free a moment ago, none of the main node's or epmd's, none of
 * `rabbitmqctl`'s and none of `taken` (ports already handed to another node).
 */
export function freePort(taken: number[] = []): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    const ctlPort = port >= CTL_DIST_PORTS.min && port <= CTL_DIST_PORTS.max;
    if (!RESERVED_PORTS.has(port) && !ctlPort && !taken.includes(port)) return port;
  }
  // Unreachable in practice: the kernel hands out ports from a range of thousands.
  throw new PrivateNodeError("Cannot find a free port on 127.0.0.1: 50 attempts failed");
}

/**
 * The pids of running processes whose command line or environment mentions `text` (Linux `/proc`;
 * zombies have neither): what a test checks to see that a node left no process behind. A node's
 * name is in the environment of all its processes (`RABBITMQ_NODENAME`), never on beam.smp's
 * command line.
 */
export async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    for (const file of ["cmdline", "environ"]) {
      try {
        if ((await Deno.readTextFile(`/proc/${entry.name}/${file}`)).includes(text)) {
          pids.push(Number(entry.name));
          break;
        }
      } catch {
        // Exited while we looked, or not ours to read.
      }
    }
  }
  return pids;
}

/** Processes descending from `pid`, children first (Linux `/proc`; empty elsewhere). */
async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const ppid = parsePpid(await Deno.readTextFile(`/proc/${entry.name}/stat`));
        if (ppid !== undefined) parents.set(Number(entry.name), ppid);
      } catch {
        // The process exited while we looked.
      }
    }
  } catch {
    return [];
  }
  return treeBelow(pid, parents);
}

function descendantsSync(pid: number): number[] {
  const parents = new Map<number, number>();
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const ppid = parsePpid(Deno.readTextFileSync(`/proc/${entry.name}/stat`));
        if (ppid !== undefined) parents.set(Number(entry.name), ppid);
      } catch {
        // The process exited while we looked.
      }
    }
  } catch {
    return [];
  }
  return treeBelow(pid, parents);
}

function treeBelow(root: number, parents: Map<number, number>): number[] {
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const [pid, ppid] of parents) {
      if (ppid === parent && !found.includes(pid)) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

/**
 * The fields of a `/proc/<pid>/stat` line after the `(comm)` field, which may hold spaces and
 * parentheses: the state letter first (R, S, T for stopped, Z...), then the parent pid.
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

function parsePpid(stat: string): number | undefined {
  const ppid = Number(statFields(stat)[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

function parsePid(text: string): number | undefined {
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function killQuietly(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Whether `pid` runs or is stopped: false once it has exited, zombie or not (Linux `/proc`). Every
 * thread counts: the main thread of a SIGKILLed beam.smp turns zombie while its other threads
 * still exit, holding the node's listening socket (a restart then found the old port "accepting").
 */
function isAlive(pid: number): boolean {
  try {
    for (const thread of Deno.readDirSync(`/proc/${pid}/task`)) {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${thread.name}/stat`);
      if (statFields(stat)[0] !== "Z") return true;
    }
  } catch {
    // Gone while we looked.
  }
  return false;
}

/** Resolves after `ms`, or as soon as `other` settles. */
async function delayOr(ms: number, other: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
    other.then(() => {}, () => {}),
  ]);
  clearTimeout(timer);
}

function envVar(key: string): string | undefined {
  try {
    return Deno.env.get(key);
  } catch {
    return undefined;
  }
}

function envObject(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    const path = envVar("PATH");
    return path === undefined ? {} : { PATH: path };
  }
}

function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

function randomCookie(): string {
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return Array.from(crypto.getRandomValues(new Uint8Array(20)))
    .map((byte) => letters[byte % letters.length])
    .join("");
}
