/**
 * What the dashboard tests share: the dashboard run as a person runs it (`deno task dashboard`),
 * and its event stream read as the page reads it.
 * @module
 */
import { Child, type Scenario, within } from "../testing/scenario.ts";

/** The fields of a `state` message the tests look at. */
export interface PageState {
  queue: string;
  error: string | null;
  declared: boolean;
  listening: boolean;
  snapshot: {
    ready: number;
    consumers: number;
    dead: number;
    workers: { name: string; state: string; completed: number }[];
    workersDropped: number;
  };
  timeline: { rows: { worker: string; bars: { start: number; end: number }[] }[] };
}

/** The fields of a `dead` message (the dead letters, sent when they change) the tests look at. */
export interface PageDead {
  total: number;
  error: string | null;
  letters: { id: string }[];
}

/** A dashboard started with `deno task dashboard`. */
export interface DashboardChild {
  child: Child;
  /** The page's address, as printed (without the token). */
  url: string;
  token: string;
  /** The process id of the dashboard itself: `deno task`'s child. */
  pid: number;
}

/**
 * Starts `deno task dashboard --queue <the scenario's> --port 0 ...args` (logging at info level)
 * and waits for the address it prints; the scenario kills it at the end.
 */
export async function spawnDashboard(
  scenario: Scenario,
  args: string[] = [],
): Promise<DashboardChild> {
  const child = new Child("dashboard", "dashboard", [
    ...["--queue", scenario.queue, "--port", "0"],
    ...args,
  ], { AMQP_URL: scenario.url, LOG_LEVEL: "info" });
  scenario.children.push(child);
  const line = await child.waitForLine(/^dashboard: http/, 30_000);
  const [, url, token] = /^dashboard: (\S+)#token=(\S+)$/.exec(line)!;
  return { child, url: url!, token: token!, pid: programPid(child) };
}

/** The process `deno task` runs: its only child. */
export function programPid(child: Child): number {
  const children = Deno.readTextFileSync(`/proc/${child.pid}/task/${child.pid}/children`);
  const pid = Number(children.trim().split(" ")[0]);
  if (!(pid > 0)) throw new Error(`deno task (${child.pid}) has no child process`);
  return pid;
}

/** The resident set of a process, in MiB, from `/proc/<pid>/status`. */
export function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (kib === null) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(kib[1]) / 1024;
}

/** The dashboard's `/events` stream, read as the page's EventSource reads it. */
export class StateStream implements AsyncDisposable {
  /** Every `state` message so far. */
  readonly states: PageState[] = [];
  /** Every `dead` message so far. */
  readonly deads: PageDead[] = [];
  #deadWaiters: { test: (dead: PageDead) => boolean; resolve: (dead: PageDead) => void }[] = [];
  #reader: ReadableStreamDefaultReader<string>;
  #waiters: { test: (state: PageState) => boolean; resolve: (state: PageState) => void }[] = [];
  #reading: Promise<void>;

  private constructor(reader: ReadableStreamDefaultReader<string>) {
    this.#reader = reader;
    this.#reading = this.#read();
  }

  /** Connects to `<url>events`. */
  static async open(url: string): Promise<StateStream> {
    const response = await fetch(`${url}events`);
    if (!response.ok || response.body === null) throw new Error(`GET /events: ${response.status}`);
    return new StateStream(response.body.pipeThrough(new TextDecoderStream()).getReader());
  }

  async #read(): Promise<void> {
    let buffer = "";
    try {
      while (true) {
        const { value, done } = await this.#reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = message.split("\n");
          const data = lines.find((line) => line.startsWith("data: "));
          if (data === undefined) continue;
          if (lines.includes("event: state")) this.#state(JSON.parse(data.slice(6)));
          if (lines.includes("event: dead")) this.#dead(JSON.parse(data.slice(6)));
        }
      }
    } catch {
      // Cancelled.
    }
  }

  #state(state: PageState): void {
    this.states.push(state);
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.test(state)) return true;
      waiter.resolve(state);
      return false;
    });
  }

  #dead(dead: PageDead): void {
    this.deads.push(dead);
    this.#deadWaiters = this.#deadWaiters.filter((waiter) => {
      if (!waiter.test(dead)) return true;
      waiter.resolve(dead);
      return false;
    });
  }

  /** Resolves with the first `dead` message from now on that passes `test`; fails after `ms`. */
  waitForNextDead(
    test: (dead: PageDead) => boolean,
    what: string,
    ms = 30_000,
  ): Promise<PageDead> {
    const dead = new Promise<PageDead>((resolve) => this.#deadWaiters.push({ test, resolve }));
    return within(dead, ms, `a list of dead letters with ${what}`);
  }

  /** Resolves with the first `dead` message (past or future) that passes `test`. */
  waitForDead(test: (dead: PageDead) => boolean, what: string, ms = 30_000): Promise<PageDead> {
    const seen = this.deads.find(test);
    return seen !== undefined ? Promise.resolve(seen) : this.waitForNextDead(test, what, ms);
  }

  /** Resolves with the first state (past or future) that passes `test`; fails after `ms`. */
  waitFor(test: (state: PageState) => boolean, what: string, ms = 30_000): Promise<PageState> {
    const seen = this.states.find(test);
    if (seen !== undefined) return Promise.resolve(seen);
    const state = new Promise<PageState>((resolve) => this.#waiters.push({ test, resolve }));
    return within(state, ms, `a dashboard state with ${what}`);
  }

  /** Resolves with the first state from now on that passes `test`; fails after `ms`. */
  waitForNext(test: (state: PageState) => boolean, what: string, ms = 30_000): Promise<PageState> {
    const state = new Promise<PageState>((resolve) => this.#waiters.push({ test, resolve }));
    return within(state, ms, `a new dashboard state with ${what}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#reader.cancel().catch(() => {});
    await this.#reading;
  }
}

/** The worker `name` as the state shows it, if it does. */
export function workerIn(state: PageState, name: string) {
  return state.snapshot.workers.find((worker) => worker.name === name);
}
