/**
 * Periodic tasks: a scheduler enqueues one task per tick of each schedule (a cron expression),
 * with the id `<schedule id>@<tick ISO time>`. Run as many schedulers as you like on one queue:
 * RabbitMQ picks the one that fires through the lease (`scheduler/lease.ts`, a single-active-
 * consumer queue holding one token); the others stand by and take over when its connection ends.
 * The leader enqueues a tick's task and replaces the token, which records the tick, in one AMQP
 * transaction (`scheduler/tx.ts`): killed before the commit it leaves none of it and its
 * successor fires the tick; killed after, all of it, and its successor goes on from the next one.
 * docs/scheduling.md says what happens to missed ticks and in which faults.
 *
 * @example
 * ```ts
 * import { createScheduler } from "./scheduler.ts";
 *
 * await using scheduler = await createScheduler({
 *   queue: "reports",
 *   schedules: [{ id: "daily", cron: "0 7 * * *", timezone: "Europe/Madrid", name: "report" }],
 *   catchUp: "once",
 * });
 * await scheduler.closed; // until close()
 * ```
 * @module
 */
import type { ChannelModel } from "../deps/amqplib.ts";
import { isoTime } from "../core/clock.ts";
import { type Connection, openConnection } from "../core/connection.ts";
import { errorMessage } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { checkNumber, checkQueue } from "../core/options.ts";
import { DEFAULT_URL, parseBrokerUrls } from "../core/url.ts";
import { tickTaskId } from "./scheduler/lease.ts";
import { LeaseSession } from "./scheduler/session.ts";
import {
  type CatchUp,
  checkCatchUp,
  checkSchedules,
  type CompiledSchedule,
  type Schedule,
} from "./scheduler/schedules.ts";
import { type Plan, planAll } from "./scheduler/ticks.ts";

export type { CatchUp, Schedule } from "./scheduler/schedules.ts";
export { parseScheduleFile, type ScheduleFile } from "./scheduler/schedules.ts";
export { leaseQueue, tickTaskId } from "./scheduler/lease.ts";

/**
 * How often a leader replaces its token even when nothing is due: the broker closes a channel
 * that holds an unacked delivery longer than its `consumer_timeout` (30 minutes by default),
 * which would pass the lease around for nothing.
 */
export const REFRESH_MS = 60_000;

/** Options of {@linkcode createScheduler}. */
export interface SchedulerOptions {
  /** The schedules: at least one, each with a unique id. */
  schedules: Schedule[];
  /** Broker URL, or a comma-separated list of a cluster's nodes. @default {"amqp://guest:guest@127.0.0.1:5672"} */
  url?: string | undefined;
  /** The work queue the tasks go to. @default {"tareas_distribuidas"} */
  queue?: string | undefined;
  /**
   * What to do with ticks missed while no scheduler led (none ran, the broker was down):
   * `"skip"` drops them, `"once"` fires the most recent one once, as soon as a scheduler leads.
   * @default {"skip"}
   */
  catchUp?: CatchUp | undefined;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number | undefined;
  /** The scheduler's name in logs and in the token. @default {"<hostname>-<pid>"} */
  name?: string | undefined;
}

/** A tick fired: the detail of a `fired` event. */
export interface FiredDetail {
  /** The schedule's id. */
  scheduleId: string;
  /** The task's id, `<schedule id>@<tick>`. */
  taskId: string;
  /** Whether it is a missed tick fired late (`catchUp: "once"`). */
  catchUp: boolean;
}

/** The events of a scheduler, by type, with their `detail`. */
export interface SchedulerEventMap {
  /** This scheduler took the lease: it fires the schedules from now on. */
  leading: CustomEvent<{ since: string }>;
  /** A tick's task was enqueued (its transaction committed). */
  fired: CustomEvent<FiredDetail>;
}

/**
 * A running scheduler; see {@linkcode createScheduler}. An `EventTarget` of
 * {@linkcode SchedulerEventMap}.
 */
export interface Scheduler extends EventTarget, AsyncDisposable {
  /** Its name in logs and in the token. */
  readonly name: string;
  /** The work queue it enqueues to. */
  readonly queue: string;
  /**
   * Resolves once closed by `close()`; rejects when the connection gives up for
   * good (a configuration error, such as a lease queue declared with other arguments).
   */
  readonly closed: Promise<void>;
  /** Stops firing and closes the connection (the lease passes to a standby). Idempotent. */
  close(): Promise<void>;
  /** Listens to one of the scheduler's events. */
  addEventListener<K extends keyof SchedulerEventMap>(
    type: K,
    listener: (event: SchedulerEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Listens to any event (EventTarget's signature). */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
}

/**
 * Starts a scheduler and resolves once it is connected: standing by, or leading when it got the
 * lease.
 *
 * @throws {UsageError} for a bad schedule or option, one line naming it.
 * @throws {ConfigError} when the work queue or the lease queue exists with other arguments, or
 *   the broker refuses the credentials.
 * @throws {BrokerUnreachableError} when the broker cannot be reached after a few retries.
 * @example
 * ```ts
 * await using scheduler = await createScheduler({
 *   schedules: [{ id: "cleanup", cron: "*\/5 * * * *", name: "cleanup", payload: { days: 30 } }],
 * });
 * scheduler.addEventListener("fired", (e) => console.log(e.detail.taskId));
 * ```
 */
export async function createScheduler(options: SchedulerOptions): Promise<Scheduler> {
  const scheduler = new TareasScheduler(options);
  await scheduler.start();
  return scheduler;
}

class TareasScheduler extends EventTarget implements Scheduler {
  readonly name: string;
  readonly queue: string;
  readonly closed: Promise<void>;
  #url: string;
  #heartbeat: number;
  #schedules: CompiledSchedule[];
  #logger = log("scheduler");
  #connection: Connection | undefined;
  #session: LeaseSession | undefined;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #stopping = false;
  #closing: Promise<void> | undefined;
  #settle: { resolve: () => void; reject: (error: unknown) => void };

  constructor(options: SchedulerOptions) {
    super();
    this.queue = checkQueue(options.queue);
    this.#url = options.url ?? DEFAULT_URL;
    parseBrokerUrls(this.#url);
    this.#heartbeat = checkNumber("heartbeat", options.heartbeat);
    this.#schedules = checkSchedules(options.schedules, checkCatchUp(options.catchUp));
    this.name = options.name ?? defaultName();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    promise.catch(() => {}); // Whoever awaits `closed` sees the failure; nobody must.
    this.closed = promise;
    this.#settle = { resolve, reject };
  }

  async start(): Promise<void> {
    this.#connection = await openConnection({
      url: this.#url,
      heartbeat: this.#heartbeat,
      name: `tareas scheduler ${this.name}`,
      setup: (model) => this.#setup(model),
    });
    this.#connection.failed.catch((error) => {
      this.#settle.reject(error);
      void this.close();
    });
    this.#loop = this.#run();
  }

  /** On every (re)connection: a new session on the lease, standing by until a token comes. */
  async #setup(model: ChannelModel): Promise<void> {
    const { session, madeToken } = await LeaseSession.open(model, {
      queue: this.queue,
      by: this.name,
      hooks: {
        onToken: (error) => {
          if (error !== undefined) {
            this.#logger.warn("Dropping a lease message that is not a token: {reason}", {
              reason: errorMessage(error),
            });
          }
          this.#wake?.();
        },
        onEnd: (ended, reason) => this.#ended(ended, reason),
      },
    });
    if (!session.ended) this.#session = session;
    this.#wake?.(); // A token may have come with the consume's answer.
    if (madeToken) this.#logger.info("Made the lease token of {queue}", { queue: this.queue });
    this.#logger.info("Scheduler {name} standing by for the lease of {queue} ({count} schedules)", {
      name: this.name,
      queue: this.queue,
      count: this.#schedules.length,
    });
  }

  /** A session ended: its tokens went back to the lease queue, for whoever leads next. */
  #ended(session: LeaseSession, reason: string): void {
    if (this.#session === session) this.#session = undefined;
    if (session.leadSince !== undefined) {
      this.#logger[this.#stopping ? "info" : "warn"](
        "Scheduler {name} no longer leads {queue}: {reason}",
        { name: this.name, queue: this.queue, reason: this.#stopping ? "closed" : reason },
      );
    }
    // Under a live connection, start over on a new one; a dead one reconnects by itself.
    if (!this.#stopping) session.model.close().catch(() => {});
    this.#wake?.();
  }

  /** The leader's loop: plan, commit what is due, sleep until the next tick. */
  async #run(): Promise<void> {
    while (!this.#stopping) {
      const session = this.#session;
      const ms = session && session.tokens > 0 ? await this.#lead(session) : Infinity;
      if (ms > 0) await this.#sleep(ms);
    }
  }

  /** One turn of a leader: commits what is due; returns how long to wait before the next. */
  async #lead(session: LeaseSession): Promise<number> {
    const now = Date.now();
    if (session.leadSince === undefined) {
      session.leadSince = now;
      this.#logger.info("Scheduler {name} leads {queue}", { name: this.name, queue: this.queue });
      this.#emit("leading", { since: isoTime(now) });
    }
    const plan = planAll(this.#schedules, session.record(), { now, leadSince: session.leadSince });
    // The first commit of a leader replaces the token it was handed (fresh delivery count,
    // duplicates merged); later ones come with ticks, or every REFRESH_MS.
    const refresh = session.committed + REFRESH_MS;
    if (plan.due.length === 0 && !plan.changed && session.tokens === 1 && now < refresh) {
      return Math.min(plan.next, refresh) - now;
    }
    try {
      await session.commit(plan);
    } catch (error) {
      // The channel or connection is gone: the commit happened as a whole or not at all, and
      // the token (the old or the new one) goes to whoever leads next.
      session.end(`the commit failed (${errorMessage(error)})`);
      return 0;
    }
    this.#report(plan);
    return 0;
  }

  /** Logs and dispatches what a commit did. */
  #report(plan: Plan): void {
    for (const { id, first, last } of plan.skipped) {
      this.#logger.warn("Skipped the missed ticks of {id} from {first} to {last}", {
        id,
        first: isoTime(first),
        last: isoTime(last),
      });
    }
    for (const { schedule, at, catchUp } of plan.due) {
      const taskId = tickTaskId(schedule.id, at);
      this.#logger.info(catchUp ? "Fired {taskId}, a missed tick, late" : "Fired {taskId}", {
        taskId,
      });
      this.#emit("fired", { scheduleId: schedule.id, taskId, catchUp });
    }
  }

  #emit<K extends keyof SchedulerEventMap>(type: K, detail: SchedulerEventMap[K]["detail"]) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Waits `ms` (at most a minute: the wall clock may jump), or until something happens. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      if (Number.isFinite(ms)) timer = setTimeout(done, Math.min(ms, 60_000));
    });
  }

  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#stopping = true;
      this.#wake?.();
      // A commit in flight ends first: stopping never cuts one in half.
      await this.#loop?.catch(() => {});
      await this.#connection?.close().catch((error) => {
        this.#logger.debug("Closing the connection failed: {cause}", {
          cause: errorMessage(error),
        });
      });
      this.#session?.end("closed");
      this.#settle.resolve();
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** `<hostname>-<pid>`, or `scheduler-<pid>` when the program may not read the host name. */
function defaultName(): string {
  const { state } = Deno.permissions.querySync({ name: "sys", kind: "hostname" });
  return state === "granted" ? `${Deno.hostname()}-${Deno.pid}` : `scheduler-${Deno.pid}`;
}
