/**
 * The {@linkcode PrivateNode} implementation: a RabbitMQ node run as a child process of this one,
 * through the wrapper of `_last_resort.ts`, on its own ports, cookie, config and data dir.
 * @module
 */

import { errorMessage } from "../../core/errors.ts";
import { acceptsConnection, envObject } from "./_host.ts";
import { forgetOnUnload, killOnUnload, WRAPPER } from "./_last_resort.ts";
import {
  descendants,
  descendantsSync,
  isAlive,
  killQuietly,
  parsePid,
  untilStopped,
} from "./_processes.ts";
import { type KillOptions, type PrivateNode, PrivateNodeError } from "./private_node.ts";

/** How many lines of the node's output and log an error message quotes. */
const LOG_TAIL_LINES = 40;

/** What {@linkcode RabbitNode} is made of: the script to run, and the node's identity and config. */
export interface RabbitNodeInit {
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

/** A private RabbitMQ node; see {@linkcode PrivateNode} for what each method does. */
export class RabbitNode implements PrivateNode {
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
        ...this.#env(true),
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
    killOnUnload(this);
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
    await untilStopped(beam, true);
  }

  async thaw(): Promise<void> {
    if (!this.#frozen) return;
    const beam = await this.#beamPid();
    if (beam !== undefined) {
      killQuietly(beam, "SIGCONT");
      await untilStopped(beam, false);
    }
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
        ...this.#env(false),
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
    forgetOnUnload(this);
  }

  /**
   * The environment of the node's processes: this one's less its RabbitMQ and Erlang settings,
   * which would mix with the node's; when reading it is not granted, inherited as it is.
   */
  #env(server: boolean): { env: Record<string, string>; clearEnv: boolean } {
    const inherited = envObject();
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(inherited ?? {})) {
      if (!key.startsWith("RABBITMQ_") && !key.startsWith("ERL_")) env[key] = value;
    }
    if (inherited !== undefined) env.LANG ??= "C.UTF-8";
    env.HOME = this.dataDir;
    env.ERL_EPMD_ADDRESS = "127.0.0.1";
    env.RABBITMQ_CONF_ENV_FILE = `${this.dataDir}/rabbitmq-env.conf`;
    const clearEnv = inherited !== undefined;
    if (!server) return { env, clearEnv };
    return {
      clearEnv,
      env: {
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
      },
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

/** Resolves after `ms`, or as soon as `other` settles. */
async function delayOr(ms: number, other: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
    other.then(() => {}, () => {}),
  ]);
  clearTimeout(timer);
}
