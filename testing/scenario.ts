/**
 * Test harness: one broker for the whole run, the README's commands run as a person runs them
 * (`deno task <name> ...` from the repository root, with deno.json's permissions; in a
 * pseudo-terminal too) with their output read line by line, and an event log that tests wait on.
 * Never sleeps: every wait resolves on a line or an event, or fails with a message saying what it
 * awaited.
 * @module
 */
import { Buffer } from "node:buffer";
import amqp, {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type Options,
} from "../lib/deps/amqplib.ts";
import { delay } from "../lib/core/async.ts";
import { isNotFound, withChannel } from "../lib/core/broker_errors.ts";
import { type Broker, findOrStartBroker } from "../lib/operate/local_broker.ts";
import { eventsExchange, type TareasEvent, type TaskEvent } from "../lib/core/events.ts";
import { parseEvents, subscribeEvents } from "../lib/observe/subscribe.ts";
import { encodeTask, type Task, taskProperties } from "../lib/core/task.ts";
import { deadQueue, declareTopology } from "../lib/core/topology.ts";

const ROOT = new URL("../", import.meta.url).pathname;

let broker: Promise<Broker> | undefined;

/** The broker every test uses: `AMQP_URL` or the local one, else a private node for the run. */
export async function brokerUrl(): Promise<string> {
  broker ??= findOrStartBroker();
  return (await broker).url;
}

/** A fresh queue name, so tests never see each other's messages. */
export function freshQueue(prefix = "test"): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** Waits for `promise`, failing with a message naming what was awaited after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The commands of deno.json that the README names, which the harness runs as a person does:
 * `deno task <name> ...args` from the repository root, with the task's own permissions.
 */
export type TaskName =
  | "work"
  | "produce"
  | "status"
  | "dead"
  | "dashboard"
  | "migrate"
  | "demo"
  | "schedule"
  | "verify"
  | "bench";

/** The variables our commands read: a child sees them only if the test passes them. */
const OUR_VARIABLES = ["AMQP_URL", "LOG_LEVEL", "LOG_FORMAT"];

/** The test runner's environment without our variables, plus `env`. */
function childEnv(env: Record<string, string>): Record<string, string> {
  const inherited = Deno.env.toObject();
  for (const name of OUR_VARIABLES) delete inherited[name];
  return { ...inherited, ...env };
}

/** The line `deno task` prints on stderr before it runs the task (`Task work deno run ...`). */
// deno-lint-ignore no-control-regex
const TASK_BANNER = /^(\x1b\[[0-9;]*m)*Task(\x1b\[[0-9;]*m)* /;

/** Signal numbers, for the exit codes `deno task` gives a program killed by a signal. */
const SIGNALS: Record<number, Deno.Signal> = {
  1: "SIGHUP",
  2: "SIGINT",
  6: "SIGABRT",
  9: "SIGKILL",
  15: "SIGTERM",
};

/**
 * The status of a program run by `deno task`: a program killed by signal n makes `deno task`
 * exit with 128 + n (as a shell does); given back as that signal, so that a test reads the same
 * whether the signal hit the program alone or its whole process group.
 */
function programStatus(status: Deno.CommandStatus): Deno.CommandStatus {
  const signal = SIGNALS[status.code - 128];
  if (status.signal !== null || signal === undefined) return status;
  return { success: false, code: status.code, signal };
}

/**
 * A command of the README (`deno task <name> ...args`) with its output captured line by line.
 * It runs in a process group of its own (`setsid`), as in a terminal, so that a signal reaches
 * `deno task` and the program it runs together.
 */
export class Child implements AsyncDisposable {
  /** A name for messages and the printed output. */
  readonly name: string;
  /** Output lines, stdout and stderr interleaved as read, without the banner of `deno task`. */
  readonly lines: string[] = [];
  /** The exit status; a program killed by a signal has that `signal` (see `programStatus`). */
  readonly status: Promise<Deno.CommandStatus>;
  #process: Deno.ChildProcess;
  #waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  #reading: Promise<unknown>;
  #exited = false;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;

  /**
   * Runs `deno task <task> ...args` from the repository root, with the test runner's
   * environment less `AMQP_URL`, `LOG_LEVEL` and `LOG_FORMAT`, plus `env`.
   */
  constructor(
    name: string,
    task: TaskName,
    args: string[],
    env: Record<string, string> = {},
    stdin: "null" | "piped" = "null",
  ) {
    this.name = name;
    // Spawned by Deno, setsid is not a group leader, so it execs in place: the pid we get is the
    // group's id.
    this.#process = new Deno.Command("setsid", {
      args: [Deno.execPath(), "task", task, ...args],
      cwd: ROOT,
      clearEnv: true,
      env: childEnv(env),
      stdin,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.status = this.#process.status.then(programStatus);
    this.status.then(() => this.#exited = true);
    this.#reading = Promise.all([
      this.#read(this.#process.stdout, false),
      this.#read(this.#process.stderr, true),
    ]);
  }

  /** The process id of `deno task`, which is also the id of the command's process group. */
  get pid(): number {
    return this.#process.pid;
  }

  /** Whether the process is still running (false once its exit status is known). */
  get running(): boolean {
    return !this.#exited;
  }

  async #read(stream: ReadableStream<Uint8Array>, banner: boolean): Promise<void> {
    const decoder = new TextDecoderStream();
    let rest = "";
    for await (const chunk of stream.pipeThrough(decoder)) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        if (banner && TASK_BANNER.test(line)) continue;
        banner = false;
        this.#line(line);
      }
    }
    if (rest) this.#line(rest);
  }

  #line(line: string): void {
    this.lines.push(line);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.test(line)) return true;
      waiter.resolve(line);
      return false;
    });
  }

  /** Resolves with the first output line (past or future) that matches. */
  waitForLine(pattern: RegExp, ms = 20_000): Promise<string> {
    return this.waitForLines(pattern, 1, ms);
  }

  /** Resolves with the `count`-th output line (past or future) that matches. */
  waitForLines(pattern: RegExp, count: number, ms = 20_000): Promise<string> {
    let seen = 0;
    for (const line of this.lines) {
      if (pattern.test(line) && ++seen === count) return Promise.resolve(line);
    }
    const line = new Promise<string>((resolve) =>
      this.#waiters.push({ test: (l) => pattern.test(l) && ++seen === count, resolve })
    );
    return within(line, ms, `line ${count} matching ${pattern} from ${this.name}`);
  }

  /** Waits for the process to exit and for all its output to be read. */
  async exit(ms = 30_000): Promise<Deno.CommandStatus> {
    const status = await within(this.status, ms, `${this.name} to exit`);
    await this.#reading;
    return status;
  }

  /** Writes to the process's standard input (spawned with `stdin: "piped"`). */
  async write(text: string): Promise<void> {
    this.#stdin ??= this.#process.stdin.getWriter();
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  /** Closes the process's standard input. */
  async closeInput(): Promise<void> {
    this.#stdin ??= this.#process.stdin.getWriter();
    await this.#stdin.close();
  }

  /** Sends `signal` to the process group: `deno task` and the program it runs. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.#exited) return;
    try {
      Deno.kill(-this.#process.pid, signal);
    } catch {
      // Already exited.
    }
  }

  /** The output so far, under a header naming the command: for failure messages. */
  output(): string {
    return `--- ${this.name} ---\n${this.lines.join("\n")}`;
  }

  /** Kills the process group and waits until it exited and its output is read. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.status;
    await this.#reading;
  }
}

/**
 * Runs `deno task <task> ...args` from the repository root to completion, as {@linkcode Child}
 * does, with `input` (text or raw bytes) on standard input, and returns its exit code and output
 * (stderr without the banner of `deno task`).
 */
export async function run(
  task: TaskName,
  args: string[],
  env: Record<string, string> = {},
  input?: string | Uint8Array,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", task, ...args],
    cwd: ROOT,
    clearEnv: true,
    env: childEnv(env),
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder();
  const [first, ...rest] = text.decode(stderr).split("\n");
  return {
    code,
    stdout: text.decode(stdout),
    stderr: TASK_BANNER.test(first!) ? rest.join("\n") : [first, ...rest].join("\n"),
  };
}

/** What Deno prints when it asks for a permission at a terminal. */
const PERMISSION_PROMPT = /Deno requests|Allow\?/;

/**
 * A command of the README run in a pseudo-terminal, as a person's terminal runs it:
 * `script -qfec "deno task <task> ...args" <log>`, with `env` in the environment (and no
 * `AMQP_URL`, `LOG_LEVEL` or `LOG_FORMAT` otherwise), standard input empty. {@linkcode screen}
 * is what the person sees. Any wait fails at once if Deno asks for a permission.
 */
export class TerminalChild implements AsyncDisposable {
  /** A name for messages and the printed output. */
  readonly name: string;
  /** The exit status of the command (`script -e` exits with it). */
  readonly status: Promise<Deno.CommandStatus>;
  #process: Deno.ChildProcess;
  #log: string;
  #raw = "";
  #waiters: (() => void)[] = [];
  #reading: Promise<void>;
  #exited = false;

  private constructor(name: string, process: Deno.ChildProcess, log: string) {
    this.name = name;
    this.#process = process;
    this.#log = log;
    this.status = process.status.then(programStatus);
    this.status.then(() => {
      this.#exited = true;
      this.#wake();
    });
    this.#reading = this.#read();
  }

  /** Starts `deno task <task> ...args` in a pseudo-terminal. */
  static async start(
    name: string,
    task: TaskName,
    args: string[],
    env: Record<string, string> = {},
  ): Promise<TerminalChild> {
    const log = await Deno.makeTempFile({ prefix: "tareas-terminal-", suffix: ".log" });
    // `exec`: the shell `script` starts (`$SHELL`, or dash when it is unset) becomes `deno task`,
    // the terminal's foreground job, as at a person's prompt; a shell left waiting in between
    // would die of the Ctrl-C itself and report 130 whatever the program did.
    // A person's terminal has a size; one `script` opens without a terminal of its own has none.
    const command = `stty cols ${COLUMNS} rows 40; exec ${
      ["deno", "task", task, ...args].map(shellQuote).join(" ")
    }`;
    const bin = Deno.execPath().replace(/\/[^/]*$/, "");
    const inherited = childEnv(env);
    const process = new Deno.Command("setsid", {
      args: ["script", "-qfec", command, log],
      cwd: ROOT,
      clearEnv: true,
      // The deno the tests run under comes first, as the person's own would.
      env: { ...inherited, PATH: `${bin}:${inherited.PATH ?? "/usr/bin:/bin"}` },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new TerminalChild(name, process, log);
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoderStream();
    for await (const chunk of this.#process.stdout.pipeThrough(decoder)) {
      this.#raw += chunk;
      this.#wake();
    }
    await this.#process.stderr.cancel();
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  /** Everything written to the terminal so far, escapes and carriage returns included. */
  get raw(): string {
    return this.#raw;
  }

  /** The lines on the terminal as a person sees them (see {@linkcode screenLines}). */
  screen(): string[] {
    return screenLines(this.#raw);
  }

  /**
   * Resolves with the first screen line that matches; fails if Deno asks for a permission, if the
   * command exits first, or after `ms`.
   */
  waitForLine(pattern: RegExp, ms = 20_000): Promise<string> {
    const found = async () => {
      while (true) {
        if (PERMISSION_PROMPT.test(this.#raw)) {
          throw new Error(`${this.name} asks for a permission:\n${this.output()}`);
        }
        const line = this.screen().find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (this.#exited) {
          await this.#reading;
          const late = this.screen().find((l) => pattern.test(l));
          if (late !== undefined) return late;
          throw new Error(`${this.name} exited before a line matching ${pattern}`);
        }
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
      }
    };
    return within(found(), ms, `a line matching ${pattern} on ${this.name}'s terminal`);
  }

  /** The process group of the terminal's foreground job (what Ctrl-C signals): `deno task`'s. */
  async #job(): Promise<number | undefined> {
    const pid = this.#process.pid;
    try {
      const children = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`);
      const first = Number(children.trim().split(" ")[0]);
      return first > 0 ? first : undefined;
    } catch {
      return undefined; // script has exited.
    }
  }

  /**
   * Sends `signal` to the terminal's foreground job, as the terminal does for Ctrl-C (SIGINT);
   * SIGKILL also ends `script`.
   */
  async kill(signal: Deno.Signal): Promise<void> {
    const job = await this.#job();
    for (const group of [job, signal === "SIGKILL" ? this.#process.pid : undefined]) {
      if (group === undefined || this.#exited) continue;
      try {
        Deno.kill(-group, signal);
      } catch {
        // Already exited.
      }
    }
  }

  /** Waits for the command to exit and for all its output to be read. */
  async exit(ms = 30_000): Promise<Deno.CommandStatus> {
    const status = await within(this.status, ms, `${this.name} to exit`);
    await this.#reading;
    return status;
  }

  /** The screen so far, under a header naming the command: for failure messages. */
  output(): string {
    return `--- ${this.name} (terminal) ---\n${this.screen().join("\n")}`;
  }

  /** Kills the command and `script`, waits for them, and deletes the log. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill("SIGKILL");
    await this.status;
    await this.#reading;
    await Deno.remove(this.#log).catch(() => {});
  }
}

/** The width of the terminal a {@linkcode TerminalChild} runs in. */
export const COLUMNS = 100;

/** `word` quoted for a POSIX shell. */
function shellQuote(word: string): string {
  return /^[\w.,:/=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The lines a terminal shows for `raw` output: a carriage return goes back to the start of the
 * line and what follows overwrites it, `ESC [ K` / `ESC [ 2 K` erase, other escapes (colours,
 * cursor moves) are dropped. Enough to tell whether two writes ended up on one line.
 */
export function screenLines(raw: string): string[] {
  const lines: string[] = [];
  let line: string[] = [];
  let column = 0;
  for (let i = 0; i < raw.length; i++) {
    const char = raw[i]!;
    if (char === "\x1b") {
      // deno-lint-ignore no-control-regex
      const escape = /^\x1b\[([0-9;?]*)([A-Za-z])/.exec(raw.slice(i, i + 16));
      if (escape === null) continue;
      i += escape[0].length - 1;
      if (escape[2] !== "K") continue;
      if (escape[1] === "2") line = [];
      else if (escape[1] === "1") line.fill(" ", 0, column + 1);
      else line.length = Math.min(line.length, column);
      continue;
    }
    if (char === "\r") column = 0;
    else if (char === "\n") {
      lines.push(line.join(""));
      line = [];
      column = 0;
    } else {
      while (line.length < column) line.push(" ");
      line[column++] = char;
    }
  }
  if (line.length > 0) lines.push(line.join(""));
  return lines;
}

/** Options of {@linkcode Scenario.open}. */
export interface ScenarioOptions {
  /**
   * Subscribe to the events through a durable queue named `<queue>.test-events`, so that events
   * published while the test is disconnected (a broker restart) wait for
   * {@linkcode Scenario.reconnect}.
   * @default {false}
   */
  durableEvents?: boolean;
  /** The binding key of the event subscription (see {@linkcode Scenario.listen}). @default {"#"} */
  listen?: string;
}

/** Messages consumed from one queue by {@linkcode Scenario.collect}. */
export interface Collected {
  /** Every message received so far (consumed: they are no longer in the queue). */
  readonly messages: ConsumeMessage[];
  /** Resolves once at least `count` messages have arrived, or fails after `ms` naming `what`. */
  waitFor(count: number, what: string, ms?: number): Promise<ConsumeMessage[]>;
}

/** Everything one test needs on one fresh queue: events, workers, a channel, clean-up. */
export class Scenario implements AsyncDisposable {
  /** The broker's URL. */
  readonly url: string;
  /** The test's fresh work queue. */
  readonly queue: string;
  /** Every event of the queue received so far, in arrival order. */
  readonly events: TareasEvent[] = [];
  /** The commands started for this scenario, killed at its end. */
  readonly children: Child[] = [];
  #connection: ChannelModel;
  #channel: Channel;
  #waiters: { test: (event: TareasEvent) => boolean; resolve: (event: TareasEvent) => void }[] = [];
  #failed = true;
  #stepFailed = false;
  #durableEvents: boolean;
  #listen: string;
  #confirm: Promise<ConfirmChannel> | undefined;

  private constructor(
    url: string,
    queue: string,
    connection: ChannelModel,
    channel: Channel,
    options: ScenarioOptions,
  ) {
    this.url = url;
    this.queue = queue;
    this.#connection = connection;
    this.#channel = channel;
    this.#durableEvents = options.durableEvents ?? false;
    this.#listen = options.listen ?? "#";
  }

  /** Connects, and subscribes to the events of a fresh queue before anything runs. */
  static async open(url?: string, options: ScenarioOptions = {}): Promise<Scenario> {
    url ??= await brokerUrl();
    const { connection, channel } = await Scenario.#connect(url);
    const scenario = new Scenario(
      url,
      freshQueue(),
      connection,
      channel,
      options,
    );
    await scenario.#subscribe();
    return scenario;
  }

  static async #connect(url: string): Promise<{ connection: ChannelModel; channel: Channel }> {
    const connection = await amqp.connect(url);
    // A broker crash makes the connection emit "error": without a listener it would throw.
    connection.on("error", () => {});
    const channel = await connection.createChannel();
    channel.on("error", (error: Error) => console.error(`test channel: ${error.message}`));
    return { connection, channel };
  }

  get #eventsQueue(): string {
    return `${this.queue}.test-events`;
  }

  async #subscribe(): Promise<void> {
    const onEvent = (event: TareasEvent) => this.#event(event);
    if (!this.#durableEvents) {
      return subscribeEvents(this.#channel, this.queue, onEvent, { pattern: this.#listen });
    }
    const channel = this.#channel;
    const exchange = eventsExchange(this.queue);
    await channel.assertExchange(exchange, "topic", { durable: true });
    await channel.assertQueue(this.#eventsQueue, { durable: true });
    await channel.bindQueue(this.#eventsQueue, exchange, this.#listen);
    await channel.consume(this.#eventsQueue, (message) => {
      if (message) { for (const event of parseEvents(message.content)) onEvent(event); }
    }, { noAck: true });
  }

  /**
   * Connects again after the broker restarted, and resumes the event subscription (with
   * `durableEvents`, events published in between are not lost). Collected queues are not resumed.
   */
  async reconnect(): Promise<void> {
    await this.#connection.close().catch(() => {});
    const { connection, channel } = await Scenario.#connect(this.url);
    this.#connection = connection;
    this.#channel = channel;
    this.#confirm = undefined;
    await this.#subscribe();
  }

  /**
   * Subscribes to more of the events: those whose type matches the binding key `pattern` (not
   * resumed by {@linkcode Scenario.reconnect}).
   */
  async listen(pattern: string): Promise<void> {
    await subscribeEvents(this.#channel, this.queue, (event) => this.#event(event), { pattern });
  }

  /** A channel on the test's own connection, to inspect or feed the queue. */
  get channel(): Channel {
    return this.#channel;
  }

  #event(event: TareasEvent): void {
    this.events.push(event);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.test(event)) return true;
      waiter.resolve(event);
      return false;
    });
  }

  /** Resolves with the first event from now on that matches (past events are ignored). */
  waitForNextEvent<E extends TareasEvent = TareasEvent>(
    test: (event: TareasEvent) => boolean,
    what: string,
    ms = 30_000,
  ): Promise<E> {
    const event = new Promise<TareasEvent>((resolve) => this.#waiters.push({ test, resolve }));
    return within(event, ms, what) as Promise<E>;
  }

  /** Events of one task, in the order they arrived. */
  taskEvents(taskId: string): TaskEvent[] {
    return this.events.filter((e): e is TaskEvent => "taskId" in e && e.taskId === taskId);
  }

  /**
   * Publishes a task, or a raw body, straight to the work queue (declaring the topology first)
   * and waits for the broker's confirm.
   */
  async publish(body: Task | Buffer, options: Options.Publish = {}): Promise<void> {
    this.#confirm ??= (async () => {
      const channel = await this.#connection.createConfirmChannel();
      channel.on("error", (error: Error) => console.error(`test publish: ${error.message}`));
      await declareTopology(channel, this.queue);
      return channel;
    })();
    const channel = await this.#confirm;
    const [content, properties] = Buffer.isBuffer(body)
      ? [body, { persistent: true }]
      : [encodeTask(body), taskProperties(body)];
    await new Promise<void>((resolve, reject) => {
      channel.sendToQueue(
        this.queue,
        content,
        { ...properties, ...options },
        (error) => error ? reject(new Error(`Publish to ${this.queue} not confirmed`)) : resolve(),
      );
    });
  }

  /** Publishes a raw body on the queue's events exchange, as anyone with access could. */
  publishEvent(routingKey: string, body: unknown): void {
    const content = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    this.#channel.publish(eventsExchange(this.queue), routingKey, content);
  }

  /**
   * Consumes every message of `queue` (the dead-letter queue by default) from now on, to wait on
   * their arrival instead of polling. The queue is declared with the topology first.
   */
  async collect(queue = deadQueue(this.queue)): Promise<Collected> {
    await declareTopology(this.#channel, this.queue);
    const messages: ConsumeMessage[] = [];
    let waiters: { count: number; resolve: () => void }[] = [];
    await this.#channel.consume(queue, (message) => {
      if (!message) return;
      messages.push(message);
      waiters = waiters.filter((waiter) => {
        if (messages.length < waiter.count) return true;
        waiter.resolve();
        return false;
      });
    }, { noAck: true });
    return {
      messages,
      waitFor: async (count, what, ms = 30_000) => {
        if (messages.length < count) {
          await within(
            new Promise<void>((resolve) => waiters.push({ count, resolve })),
            ms,
            what,
          );
        }
        return messages;
      },
    };
  }

  /** Resolves with the first event (past or future) that matches. */
  waitForEvent<E extends TareasEvent = TareasEvent>(
    test: (event: TareasEvent) => boolean,
    what: string,
    ms = 30_000,
  ): Promise<E> {
    const seen = this.events.find(test);
    if (seen) return Promise.resolve(seen as E);
    const event = new Promise<TareasEvent>((resolve) => this.#waiters.push({ test, resolve }));
    return within(event, ms, what) as Promise<E>;
  }

  /** Resolves once `count` distinct tasks have completed. */
  async waitForCompleted(count: number, ms = 60_000): Promise<void> {
    const done = () => new Set(this.completions().map((e) => e.taskId)).size >= count;
    await this.waitForEvent(() => done(), `${count} distinct tasks completed`, ms);
  }

  /** Every `task.completed` event so far. */
  completions(): TaskEvent[] {
    return this.events.filter((e): e is TaskEvent => e.type === "task.completed");
  }

  /**
   * Starts a worker on this queue without waiting for it (one whose first task kills it may die
   * before its `worker.online` event leaves the process).
   */
  spawnWorker(name: string, args: string[] = [], env: Record<string, string> = {}): Child {
    const child = new Child(name, "work", ["--queue", this.queue, "--name", name, ...args], {
      AMQP_URL: this.url,
      ...env,
    });
    this.children.push(child);
    return child;
  }

  /** Starts a worker on this queue and waits until it is consuming. */
  async startWorker(
    name: string,
    args: string[] = [],
    env: Record<string, string> = {},
  ): Promise<Child> {
    const child = this.spawnWorker(name, args, env);
    const online = this.events.filter((e) => e.type === "worker.online" && e.worker === name)
      .length;
    await this.waitForEvent(
      () =>
        this.events.filter((e) => e.type === "worker.online" && e.worker === name).length > online,
      `worker ${name} online`,
    );
    return child;
  }

  /**
   * Starts `deno task produce --wait` publishing `count` tasks of complexity `complexity` on this queue
   * (through `url`, default the scenario's) and waits until all are confirmed.
   */
  async startWaitingProducer(
    count: number,
    complexity: number,
    timeoutSeconds: number,
    url = this.url,
    extra: { args?: string[]; env?: Record<string, string> } = {},
  ): Promise<Child> {
    const producer = this.spawnProducer([
      ...["--count", String(count), "--wait"],
      ...["--min", String(complexity), "--max", String(complexity)],
      ...["--timeout", String(timeoutSeconds)],
      ...(extra.args ?? []),
    ], { AMQP_URL: url, ...extra.env });
    await producer.waitForLine(/all confirmed by the broker/);
    return producer;
  }

  /**
   * Starts `deno task produce` on this queue with `args`; does not wait. With
   * `--stdin` in `args`, write its input with {@linkcode Child.write}.
   */
  spawnProducer(args: string[], env: Record<string, string> = {}): Child {
    const producer = new Child(
      "producer",
      "produce",
      ["--queue", this.queue, ...args],
      { AMQP_URL: this.url, ...env },
      args.includes("--stdin") ? "piped" : "null",
    );
    this.children.push(producer);
    return producer;
  }

  /** Runs the producer on this queue to completion; fails the test unless it exits 0. */
  async produce(args: string[] = [], env: Record<string, string> = {}): Promise<string> {
    const result = await run("produce", ["--queue", this.queue, ...args], {
      AMQP_URL: this.url,
      ...env,
    });
    if (result.code !== 0) {
      throw new Error(`producer exited ${result.code}:\n${result.stdout}${result.stderr}`);
    }
    return result.stdout;
  }

  /** Whether a queue exists (a passive declare on a channel of its own). */
  queueExists(name: string): Promise<boolean> {
    return withChannel(this.#connection, (channel) => channel.checkQueue(name))
      .then(() => true, (error) => isNotFound(error) ? false : Promise.reject(error));
  }

  /** Messages ready in a queue of this scenario. */
  async ready(queue = this.queue): Promise<number> {
    return (await this.#channel.checkQueue(queue)).messageCount;
  }

  /**
   * Resolves once the work queue holds `count` ready messages, for what the broker does on its
   * own after a process is gone (requeueing what its connection held, once it sees the socket
   * close); fails with the last count after `ms`.
   */
  readyBecomes(count: number, ms = 5_000): Promise<void> {
    return this.#becomes(() => this.ready(), count, ms, "ready message(s)");
  }

  /**
   * Resolves once the work queue has `count` consumers: after a worker process is gone, the
   * broker has seen its socket close (and requeued what it held); fails after `ms`.
   */
  consumersBecome(count: number, ms = 5_000): Promise<void> {
    const consumers = async () => (await this.#channel.checkQueue(this.queue)).consumerCount;
    return this.#becomes(consumers, count, ms, "consumer(s)");
  }

  async #becomes(read: () => Promise<number>, count: number, ms: number, what: string) {
    const deadline = Date.now() + ms;
    let value = await read();
    while (value !== count) {
      if (Date.now() > deadline) {
        throw new Error(`${this.queue} had ${value} ${what} after ${ms} ms, not ${count}`);
      }
      await delay(20);
      value = await read();
    }
  }

  /**
   * Runs `fn` as a step of `t`. Once a step has failed the later ones are ignored (they depend on
   * it), and {@linkcode Scenario.pass} no longer hides the children's output.
   */
  async step(t: Deno.TestContext, name: string, fn: () => unknown): Promise<boolean> {
    const ok = await t.step({
      name,
      ignore: this.#stepFailed,
      fn: async () => {
        await fn();
      },
    });
    if (!ok) this.#stepFailed = true;
    return ok;
  }

  /** Marks the scenario as passed, so disposal does not print the children's output. */
  pass(): void {
    if (!this.#stepFailed) this.#failed = false;
  }

  /** Kills the children and deletes the scenario's queues and exchange. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const child of this.children) await child[Symbol.asyncDispose]();
    if (this.#failed) { for (const child of this.children) console.error(child.output()); }
    try {
      const channel = await this.#connection.createChannel();
      for (
        const name of [
          this.queue,
          deadQueue(this.queue),
          ...(this.#durableEvents ? [this.#eventsQueue] : []),
        ]
      ) {
        await channel.deleteQueue(name).catch(() => {});
      }
      await channel.deleteExchange(eventsExchange(this.queue)).catch(() => {});
    } catch {
      // The broker is gone (a private node already stopped): nothing left to delete.
    }
    await this.#connection.close().catch(() => {});
  }
}
