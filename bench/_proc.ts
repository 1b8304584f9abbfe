/**
 * Child processes for the benchmark: spawn a Deno script, read its output line by line with the
 * time each line arrived, wait for a line with a timeout, kill it and reap it.
 * @module
 */
import { clockTicksPerSecond } from "./_procfs.ts";
import { benchFile, BenchTimeoutError, nowMs, REPO_ROOT } from "./_util.ts";

/** One line of a child's output. */
export interface Line {
  /** The text, without the line break. */
  text: string;
  /** Which stream it came from. */
  stream: "stdout" | "stderr";
  /** When the parent read it ({@linkcode nowMs}). */
  at: number;
}

/** What a child printed about itself as it ended (see `bench/_exit_probe.ts`). */
export interface ExitReport {
  /** When it ended ({@linkcode nowMs}, its own clock). */
  at: number;
  /** CPU seconds (user + system) it used over its whole life. */
  cpuSeconds: number;
  /** Its peak resident set size (`VmHWM`), KiB. */
  peakRssKiB: number;
}

/** Options for {@linkcode spawnDeno}. */
export interface SpawnOptions {
  /** A short name for error messages. */
  name: string;
  /** Extra environment variables. @default {} */
  env?: Record<string, string>;
  /** How many output lines to keep for error messages. @default 400 */
  keepLines?: number;
  /** Flags for `deno run` itself, before the script. @default [] */
  denoFlags?: string[];
}

/** How a {@linkcode Child} was spawned. */
export interface ChildOptions {
  /** A short name for error messages. */
  name: string;
  /** When it was spawned ({@linkcode nowMs}). */
  spawnedAt: number;
  /** How many output lines to keep for error messages. */
  keepLines: number;
}

/** Options of {@linkcode Child.waitForLine}. */
export interface WaitOptions {
  /** Give up after this many ms. */
  timeoutMs: number;
  /** What is awaited, for the error message. */
  what: string;
}

interface Waiter {
  match: (line: Line) => boolean;
  resolve: (line: Line) => void;
}

/**
 * A running Deno child process whose output is read line by line. Dispose it (`await using`) to
 * kill it if still running and wait for it to exit.
 */
export class Child {
  /** The name given at spawn. */
  readonly name: string;
  /** The process id. */
  readonly pid: number;
  /** When it was spawned ({@linkcode nowMs}, taken just before the spawn call). */
  readonly spawnedAt: number;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  #process: Deno.ChildProcess;
  #lines: Line[] = [];
  #keep: number;
  #waiters = new Set<Waiter>();
  #listeners = new Set<(line: Line) => void>();
  #exited = false;
  #pumps: Promise<void>[];

  /** Wraps a spawned process; use {@linkcode spawnDeno}. */
  constructor(process: Deno.ChildProcess, options: ChildOptions) {
    this.name = options.name;
    this.pid = process.pid;
    this.spawnedAt = options.spawnedAt;
    this.#process = process;
    this.#keep = options.keepLines;
    this.#pumps = [this.#pump(process.stdout, "stdout"), this.#pump(process.stderr, "stderr")];
    this.status = process.status.then(async (status) => {
      this.#exited = true;
      await Promise.allSettled(this.#pumps);
      return status;
    });
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  async #pump(stream: ReadableStream<Uint8Array>, name: Line["stream"]): Promise<void> {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      const at = nowMs();
      rest += decoder.decode(chunk, { stream: true });
      let index: number;
      while ((index = rest.indexOf("\n")) >= 0) {
        this.#push({ text: rest.slice(0, index).replace(/\r$/, ""), stream: name, at });
        rest = rest.slice(index + 1);
      }
    }
    rest += decoder.decode();
    if (rest.length > 0) this.#push({ text: rest, stream: name, at: nowMs() });
  }

  #push(line: Line): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#keep) this.#lines.shift();
    for (const listener of this.#listeners) listener(line);
    for (const waiter of this.#waiters) {
      if (waiter.match(line)) {
        this.#waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  }

  /**
   * Waits for an output line for which `match` holds, looking first at the lines already kept.
   * Rejects when the process exits first or after `timeoutMs`, with the child's recent output.
   */
  waitForLine(match: (line: Line) => boolean, options: WaitOptions): Promise<Line> {
    const { timeoutMs, what } = options;
    const seen = this.#lines.find(match);
    if (seen) return Promise.resolve(seen);
    const { promise, resolve, reject } = Promise.withResolvers<Line>();
    const waiter: Waiter = { match, resolve };
    this.#waiters.add(waiter);
    const timer = setTimeout(() => {
      this.#waiters.delete(waiter);
      reject(this.#fail(new BenchTimeoutError(`${what} from ${this.name}`, timeoutMs)));
    }, timeoutMs);
    this.status.then((status) => {
      if (!this.#waiters.has(waiter)) return;
      this.#waiters.delete(waiter);
      reject(this.#fail(new Error(`${this.name} exited with code ${status.code} before ${what}`)));
    });
    return promise.finally(() => clearTimeout(timer));
  }

  /** Waits for a line starting with `bench <word>` and returns its remaining fields. */
  async waitForReport(word: string, timeoutMs: number): Promise<{ fields: string[]; line: Line }> {
    const prefix = `bench ${word}`;
    const line = await this.waitForLine(
      (l) => l.stream === "stdout" && (l.text === prefix || l.text.startsWith(`${prefix} `)),
      { timeoutMs, what: `"${prefix}"` },
    );
    return { fields: line.text.slice(prefix.length).trim().split(/\s+/).filter(Boolean), line };
  }

  /**
   * Waits for the line `bench/_exit_probe.ts` prints as the child ends. Rejects if the child
   * exits without it (killed by a signal, or an uncaught error) or after `timeoutMs`.
   */
  async exitReport(timeoutMs: number): Promise<ExitReport> {
    const { fields } = await this.waitForReport("exit", timeoutMs);
    const [at, ticks, peakRssKiB] = fields.map(Number) as [number, number, number];
    return { at, cpuSeconds: ticks / await clockTicksPerSecond(), peakRssKiB };
  }

  /** Registers a callback for every further line. Returns a function that removes it. */
  onLine(callback: (line: Line) => void): () => void {
    this.#listeners.add(callback);
    return () => this.#listeners.delete(callback);
  }

  /** The recent output, for error messages. */
  output(): string {
    return this.#lines.map((l) => `[${this.name} ${l.stream}] ${l.text}`).join("\n");
  }

  #fail(error: Error): Error {
    const output = this.output();
    error.message += output ? `\n--- recent output of ${this.name} ---\n${output}` : "";
    return error;
  }

  /** Sends a signal if the process is still running. */
  kill(signal: Deno.Signal = "SIGKILL"): void {
    if (this.#exited) return;
    try {
      this.#process.kill(signal);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // already exited
    }
  }

  /**
   * Stops the process: `SIGTERM`, then `SIGKILL` if it has not exited after `graceMs`.
   * Resolves with the exit status.
   */
  async stop(graceMs = 5_000): Promise<Deno.CommandStatus> {
    if (!this.#exited) {
      this.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
      await Promise.race([this.status, grace]);
      clearTimeout(timer);
      this.kill("SIGKILL");
    }
    return await this.status;
  }

  /** Kills the process if it still runs and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.status;
  }
}

/**
 * Spawns `deno run --allow-all <script> ...args` from the repository root, with piped output and
 * `bench/_exit_probe.ts` preloaded (see {@linkcode Child.exitReport}).
 *
 * @example
 * ```ts
 * await using child = spawnDeno(benchFile("_bare_consumer.ts"), ["--queue", q], { name: "bare" });
 * await child.waitForReport("ready", 30_000);
 * ```
 */
export function spawnDeno(script: string, args: string[], options: SpawnOptions): Child {
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--preload",
      benchFile("_exit_probe.ts"),
      ...options.denoFlags ?? [],
      script,
      ...args,
    ],
    cwd: REPO_ROOT,
    env: options.env ?? {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const spawnedAt = nowMs();
  return new Child(command.spawn(), {
    name: options.name,
    spawnedAt,
    keepLines: options.keepLines ?? 400,
  });
}

/** Stops every child (SIGTERM, then SIGKILL after `graceMs`), each in its own try. */
export async function stopAll(children: Iterable<Child>, graceMs = 5_000): Promise<void> {
  await Promise.allSettled([...children].map((child) => child.stop(graceMs)));
}
