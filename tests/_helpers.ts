/**
 * Test harness: one broker for the whole run, worker and producer subprocesses whose output is
 * read line by line, and an event log that tests wait on. Never sleeps: every wait resolves on a
 * line or an event, or fails with a message saying what it awaited.
 * @module
 */
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { type Broker, findOrStartBroker } from "../lib/broker.ts";
import {
  eventsExchange,
  subscribeEvents,
  type TareasEvent,
  type TaskEvent,
} from "../lib/events.ts";
import { deadQueue, delayQueue } from "../lib/topology.ts";

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

  constructor(name: string, script: string, args: string[], env: Record<string, string> = {}) {
    this.name = name;
    this.#process = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}${script}`, ...args],
      env: { LOG_LEVEL: "debug", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.status = this.#process.status;
    this.#reading = Promise.all([
      this.#read(this.#process.stdout),
      this.#read(this.#process.stderr),
    ]);
  }

  get pid(): number {
    return this.#process.pid;
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
    const seen = this.lines.find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    const line = new Promise<string>((resolve) =>
      this.#waiters.push({ test: (l) => pattern.test(l), resolve })
    );
    return within(line, ms, `a line matching ${pattern} from ${this.name}`);
  }

  /** Waits for the process to exit and for all its output to be read. */
  async exit(ms = 30_000): Promise<Deno.CommandStatus> {
    const status = await within(this.status, ms, `${this.name} to exit`);
    await this.#reading;
    return status;
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
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}${script}`, ...args],
    env,
    stdin: "null",
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
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

  private constructor(url: string, queue: string, connection: ChannelModel, channel: Channel) {
    this.url = url;
    this.queue = queue;
    this.#connection = connection;
    this.#channel = channel;
  }

  /** Connects, and subscribes to the events of a fresh queue before anything runs. */
  static async open(url?: string): Promise<Scenario> {
    url ??= await brokerUrl();
    const connection = await amqp.connect(url);
    const channel = await connection.createChannel();
    channel.on("error", (error: Error) => console.error(`test channel: ${error.message}`));
    const scenario = new Scenario(url, freshQueue(), connection, channel);
    await subscribeEvents(channel, scenario.queue, (event) => scenario.#event(event));
    return scenario;
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

  /** Starts a worker on this queue and waits until it is consuming. */
  async startWorker(
    name: string,
    args: string[] = [],
    env: Record<string, string> = {},
  ): Promise<Child> {
    const child = new Child(name, "worker.ts", ["--queue", this.queue, "--name", name, ...args], {
      AMQP_URL: this.url,
      ...env,
    });
    this.children.push(child);
    const online = this.events.filter((e) => e.type === "worker.online" && e.worker === name)
      .length;
    await this.waitForEvent(
      () =>
        this.events.filter((e) => e.type === "worker.online" && e.worker === name).length > online,
      `worker ${name} online`,
    );
    return child;
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

  /** Messages ready in a queue of this scenario. */
  async ready(queue = this.queue): Promise<number> {
    return (await this.#channel.checkQueue(queue)).messageCount;
  }

  /** Marks the scenario as passed, so disposal does not print the children's output. */
  pass(): void {
    this.#failed = false;
  }

  /** Kills the children and deletes the scenario's queues and exchange. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const child of this.children) await child[Symbol.asyncDispose]();
    if (this.#failed) { for (const child of this.children) console.error(child.output()); }
    const channel = await this.#connection.createChannel();
    for (
      const name of [
        this.queue,
        deadQueue(this.queue),
        ...this.retryDelays.map((d) => delayQueue(this.queue, d)),
      ]
    ) {
      await channel.deleteQueue(name).catch(() => {});
    }
    await channel.deleteExchange(eventsExchange(this.queue)).catch(() => {});
    await this.#connection.close().catch(() => {});
  }
}
