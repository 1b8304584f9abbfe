/**
 * Verify's workers: the real worker program (`worker.ts`, run as `deno task work` runs it, with
 * its permissions) as child processes, each with its stderr kept (the last lines, for a message),
 * and a watchdog that SIGKILLs them should verify itself die without stopping them.
 * @module
 */

/** How many lines of a worker's stderr are kept for messages. */
const TAIL_LINES = 20;

/**
 * How to run the worker program: `deno` arguments up to and including the script, as the `work`
 * task of deno.json has them (its permissions, an absolute path to `worker.ts`).
 */
export interface WorkerCommand {
  /** Arguments of `Deno.execPath()`, e.g. `["run", "--allow-net", …, "/repo/worker.ts"]`. */
  args: string[];
}

/**
 * The `deno` arguments of a deno.json task line such as `deno run --allow-net worker.ts`, with the
 * script made absolute against `root`.
 *
 * @example
 * ```ts
 * workerCommand("deno run --allow-net worker.ts", "/repo/"); // { args: ["run", "--allow-net", "/repo/worker.ts"] }
 * ```
 */
export function workerCommand(task: string, root: string): WorkerCommand {
  const [program, ...args] = task.trim().split(/\s+/);
  const script = args.pop();
  if (program !== "deno" || args[0] !== "run" || script === undefined || !script.endsWith(".ts")) {
    throw new TypeError(`Not a "deno run … script.ts" task: ${task}`);
  }
  return { args: [...args, new URL(script, `file://${root.replace(/\/?$/, "/")}`).pathname] };
}

/** Settings of the workers a {@linkcode WorkerPool} starts. */
export interface WorkerPoolOptions {
  /** How to run the worker program. */
  command: WorkerCommand;
  /** Broker URL (`AMQP_URL` of the workers). */
  url: string;
  /** The work queue. */
  queue: string;
  /** The handler module's path. */
  handler: string;
  /** `--prefetch` of each worker. */
  prefetch: number;
  /** `--concurrency` of each worker. */
  concurrency: number;
  /** `--heartbeat` of each worker. */
  heartbeat: number;
  /** Hears a worker's exit that verify did not cause (neither killed nor stopped by it). */
  onExit?: (worker: WorkerProcess, status: Deno.CommandStatus) => void;
}

/** One worker process. */
export interface WorkerProcess {
  /** Its `--name`, as its events carry it. */
  readonly name: string;
  /** Its process id. */
  readonly pid: number;
  /** Resolves with its exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  /** Whether it has exited. */
  readonly exited: boolean;
  /** Whether verify SIGKILLed it on purpose. */
  readonly killed: boolean;
  /** The last lines it wrote to stderr. */
  tail(): string[];
}

/**
 * The workers of a run, named `verify-1`, `verify-2`, … in the order started. Closing it stops
 * them all; should this process exit without closing it, its watchdog kills them.
 */
export class WorkerPool implements AsyncDisposable {
  #options: WorkerPoolOptions;
  #workers = new Map<string, Worker>();
  #started = 0;
  #watchdog: Deno.ChildProcess;
  #watchdogInput: WritableStreamDefaultWriter<Uint8Array>;
  #stopping = false;
  #closing: Promise<void> | undefined;

  /** A pool with no worker yet, and its watchdog. */
  constructor(options: WorkerPoolOptions) {
    this.#options = options;
    this.#watchdog = new Deno.Command("/bin/sh", {
      args: ["-c", WATCHDOG],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    this.#watchdogInput = this.#watchdog.stdin.getWriter();
  }

  /** The workers started and not exited, in the order started. */
  get alive(): WorkerProcess[] {
    return this.#alive();
  }

  #alive(): Worker[] {
    return [...this.#workers.values()].filter((worker) => !worker.exited);
  }

  /** Every worker started, by name. */
  get all(): ReadonlyMap<string, WorkerProcess> {
    return this.#workers;
  }

  /** Starts one more worker; returns it at once (it comes online on its own). */
  start(): WorkerProcess {
    if (this.#stopping) throw new Error("Cannot start a worker: the pool is closing");
    const name = `verify-${++this.#started}`;
    const { command, url, queue, handler, prefetch, concurrency, heartbeat } = this.#options;
    const process = new Deno.Command(Deno.execPath(), {
      args: [
        ...command.args,
        ...["--queue", queue, "--name", name, "--handler", handler],
        ...["--prefetch", `${prefetch}`, "--concurrency", `${concurrency}`],
        ...["--heartbeat", `${heartbeat}`],
      ],
      env: { AMQP_URL: url, LOG_LEVEL: "warning" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const worker = new Worker(name, process);
    this.#workers.set(name, worker);
    this.#watch(`+${process.pid}`);
    worker.status.then((status) => {
      this.#watch(`-${process.pid}`);
      if (!worker.killed && !this.#stopping) this.#options.onExit?.(worker, status);
    });
    return worker;
  }

  /** SIGKILLs `worker` as a crash would; returns the time just before the signal (epoch ms). */
  kill(worker: WorkerProcess): number {
    const own = this.#workers.get(worker.name);
    if (own === undefined) throw new Error(`Not a worker of this pool: ${worker.name}`);
    const at = Date.now();
    own.kill("SIGKILL", true);
    return at;
  }

  /**
   * Stops every worker: SIGTERM (each finishes the tasks in hand, acks them, and exits), then
   * SIGKILL those still running after `graceMs`. Resolves once all have exited. Idempotent.
   */
  close(graceMs = 10_000): Promise<void> {
    return this.#closing ??= (async () => {
      this.#stopping = true;
      const alive = this.#alive();
      for (const worker of alive) worker.kill("SIGTERM", false);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
      await Promise.race([Promise.all(alive.map((worker) => worker.status)), late]);
      clearTimeout(timer);
      for (const worker of this.#alive()) worker.kill("SIGKILL", false);
      await Promise.all([...this.#workers.values()].map((worker) => worker.done()));
      await this.#watchdogInput.close().catch(() => {});
      await this.#watchdog.status;
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Tells the watchdog of a pid to kill (`+pid`) or to forget (`-pid`). */
  #watch(line: string): void {
    this.#watchdogInput.write(new TextEncoder().encode(`${line}\n`)).catch(() => {});
  }
}

/**
 * The watchdog: reads `+pid` and `-pid` lines from its standard input, a pipe from verify that
 * nothing else holds; at end-of-file (verify exited, however: even SIGKILL closes it) it SIGKILLs
 * the pids still listed. It ignores Ctrl-C's SIGINT, which a terminal sends the whole group.
 */
const WATCHDOG = `
trap '' INT TERM
pids=" "
while read -r line; do
  case "$line" in
    +*) pids="$pids\${line#+} " ;;
    -*) pids=$(printf '%s' "$pids" | sed "s/ \${line#-} / /") ;;
  esac
done
for pid in $pids; do kill -KILL "$pid" 2>/dev/null; done
exit 0
`;

class Worker implements WorkerProcess {
  readonly name: string;
  readonly pid: number;
  readonly status: Promise<Deno.CommandStatus>;
  #process: Deno.ChildProcess;
  #lines: string[] = [];
  #reading: Promise<void>;
  #exited = false;
  #killed = false;

  constructor(name: string, process: Deno.ChildProcess) {
    this.name = name;
    this.pid = process.pid;
    this.#process = process;
    this.status = process.status;
    this.status.then(() => this.#exited = true);
    this.#reading = this.#read(process.stderr).catch(() => {});
  }

  get exited(): boolean {
    return this.#exited;
  }

  get killed(): boolean {
    return this.#killed;
  }

  tail(): string[] {
    return [...this.#lines];
  }

  kill(signal: Deno.Signal, onPurpose: boolean): void {
    if (this.#exited) return;
    if (onPurpose) this.#killed = true;
    try {
      this.#process.kill(signal);
    } catch {
      // Exited meanwhile.
    }
  }

  /** Resolves once it has exited and its stderr is read. */
  async done(): Promise<void> {
    await this.status;
    await this.#reading;
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const line of parts) this.#keep(line);
    }
    if (rest !== "") this.#keep(rest);
  }

  #keep(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > TAIL_LINES) this.#lines.shift();
  }
}
