/**
 * Test harness: one broker for the whole run, worker and producer subprocesses whose output is
 * read line by line, and an event log that tests wait on. Never sleeps: every wait resolves on a
 * line or an event, or fails with a message saying what it awaited.
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
import { delay } from "../lib/async.ts";
import { type Broker, findOrStartBroker } from "./broker.ts";
import {
  eventsExchange,
  parseEvents,
  subscribeEvents,
  type TareasEvent,
  type TaskEvent,
} from "../lib/events.ts";
import { encodeTask, type Task, taskProperties } from "../lib/task.ts";
import { deadQueue, declareTopology, delayQueue } from "../lib/topology.ts";

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

/** A child process (worker, producer, tool) with its output captured line by line. */
export class Child implements AsyncDisposable {
  readonly name: string;
  readonly lines: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  #process: Deno.ChildProcess;
  #waiters: { test: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  #reading: Promise<unknown>;
  #exited = false;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;

  /**
   * Runs `deno run --allow-all <script> ...args` from the repository root; with `command`, runs
   * that program with `args` instead (for example `setsid deno task work`).
   */
  constructor(
    name: string,
    script: string,
    args: string[],
    env: Record<string, string> = {},
    command?: string,
    stdin: "null" | "piped" = "null",
  ) {
    this.name = name;
    this.#process = new Deno.Command(command ?? Deno.execPath(), {
      args: command === undefined ? ["run", "--allow-all", `${ROOT}${script}`, ...args] : args,
      cwd: ROOT,
      env: { LOG_LEVEL: "debug", ...env },
      stdin,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.status = this.#process.status;
    this.status.then(() => this.#exited = true);
    this.#reading = Promise.all([
      this.#read(this.#process.stdout),
      this.#read(this.#process.stderr),
    ]);
  }

  get pid(): number {
    return this.#process.pid;
  }

  /** Whether the process is still running (false once its exit status is known). */
  get running(): boolean {
    return !this.#exited;
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoderStream();
    let rest = "";
    for await (const chunk of stream.pipeThrough(decoder)) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) this.#line(line);
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

  kill(signal: Deno.Signal = "SIGKILL"): void {
    try {
      this.#process.kill(signal);
    } catch {
      // Already exited.
    }
  }

  output(): string {
    return `--- ${this.name} ---\n${this.lines.join("\n")}`;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.status;
    await this.#reading;
  }
}

/** Runs a command to completion and returns its exit code and output. */
export async function run(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}${script}`, ...args],
    env,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
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
  readonly url: string;
  readonly queue: string;
  readonly events: TareasEvent[] = [];
  readonly children: Child[] = [];
  /** Retry delays (ms) the test's workers use, so their delay queues are deleted too. */
  readonly retryDelays: number[] = [];
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
    const child = new Child(name, "worker.ts", ["--queue", this.queue, "--name", name, ...args], {
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
   * Starts `producer.ts --wait` publishing `count` tasks of complexity `complexity` on this queue
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
   * Starts `producer.ts` on this queue with `args`, logging at info level; does not wait. With
   * `--stdin` in `args`, write its input with {@linkcode Child.write}.
   */
  spawnProducer(args: string[], env: Record<string, string> = {}): Child {
    const producer = new Child(
      "producer",
      "producer.ts",
      ["--queue", this.queue, ...args],
      {
        AMQP_URL: this.url,
        LOG_LEVEL: "info",
        ...env,
      },
      undefined,
      args.includes("--stdin") ? "piped" : "null",
    );
    this.children.push(producer);
    return producer;
  }

  /** Runs the producer on this queue to completion; fails the test unless it exits 0. */
  async produce(args: string[] = [], env: Record<string, string> = {}): Promise<string> {
    const result = await run("producer.ts", ["--queue", this.queue, ...args], {
      AMQP_URL: this.url,
      ...env,
    });
    if (result.code !== 0) {
      throw new Error(`producer exited ${result.code}:\n${result.stdout}${result.stderr}`);
    }
    return result.stdout;
  }

  /** Whether a queue exists (a passive declare on a channel of its own). */
  async queueExists(name: string): Promise<boolean> {
    const channel = await this.#connection.createChannel();
    channel.on("error", () => {}); // A 404 closes the channel: that is the answer.
    try {
      await channel.checkQueue(name);
      await channel.close();
      return true;
    } catch {
      return false;
    }
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
          ...this.retryDelays.map((d) => delayQueue(this.queue, d)),
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
