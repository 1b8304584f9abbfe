/**
 * What the dashboard's page is drawn from, apart from any broker or server: the queue's workers
 * (a `QueueMonitor`), the recent task and worker events for the timeline, the last failures and
 * the completion rate, made into the `state` message the page redraws from. Every bound on what
 * it keeps is here: events are not signed, and forged ones must not make the page endless.
 * @module
 */
import { isTaskEvent, type TareasEvent, type TaskEvent } from "../../core/events.ts";
import { type MonitorSnapshot, QueueMonitor, type WorkerView } from "../../observe/monitor.ts";
import { buildTimeline } from "../../observe/replay.ts";
import type { RunningTask } from "../../observe/running.ts";
import type { Progress } from "../../core/results.ts";
import { DEFAULT_NAME } from "../../core/task.ts";

/** How long task events are kept for the timeline, in ms. */
const WINDOW_MS = 5 * 60_000;
/** Most task events kept for the timeline. */
const MAX_EVENTS = 5000;
/** Most `worker.online` and `worker.offline` events kept for the timeline, apart from those. */
const MAX_WORKER_EVENTS = 1000;
/**
 * Most workers sent to the page, in the table and in the timeline (the monitor tracks up to 1000;
 * events are not signed, and forged names must not make the page endless).
 */
const MAX_WORKER_ROWS = 100;
/** Failures shown. */
const MAX_FAILURES = 50;
/** Seconds of completion rate charted. */
const RATE_SECONDS = 120;
/** Longest text of a payload, body or reason sent to the page. */
export const MAX_TEXT = 4000;
/** Running tasks listed per worker (the bars show them all). */
const MAX_RUNNING_SHOWN = 5;
/**
 * Longest text of a progress object sent to the page: a state carries one per running bar (up to
 * 1000), and a progress object may be 1 KiB.
 */
const MAX_PROGRESS_TEXT = 80;

/** A progress as the page shows it: a fraction, or an object's JSON cut short. */
export type ProgressView = number | string;

/** A running task in the workers' table. */
export interface RunningView {
  taskId: string;
  seq: number;
  name: string | null;
  attempt: number;
  progress: ProgressView | null;
}

/** A worker in the workers' table: what the monitor says, its running tasks cut short. */
export type WorkerRow = Omit<WorkerView, "running"> & {
  running: RunningView[];
  /** Running tasks not listed: past {@linkcode MAX_RUNNING_SHOWN}. */
  runningNotShown: number;
};

/** What the watcher says of the queue, as the page shows it. */
export interface QueueView {
  /** What went wrong with the queue or the connection, if anything (waiting is not an error). */
  error: string | undefined;
  /** False while the queue does not exist (not declared yet, or deleted): the page waits. */
  declared: boolean;
  /** Whether the dashboard listens to the queue's events. */
  listening: boolean;
}

/** One attempt on the page's timeline. */
export interface BarView {
  taskId: string;
  seq: number;
  attempt: number;
  start: number;
  end: number;
  status: string;
  redelivered: boolean;
  lane: number;
  reason: string | null;
  /** The latest progress of a running attempt, or null. */
  progress: ProgressView | null;
}

/** The `state` message: everything the page draws but the dead letters. */
export interface PageState {
  now: number;
  queue: string;
  error: string | null;
  declared: boolean;
  listening: boolean;
  snapshot: Omit<MonitorSnapshot, "workers"> & { workers: WorkerRow[] };
  workersNotShown: number;
  timeline: {
    rows: { worker: string; lanes: number; bars: BarView[] }[];
    workersNotShown: number;
    outOfRange: number;
  };
  rate: number[];
  failures: {
    type: string;
    worker: string;
    taskId: string;
    seq: number;
    attempt: number;
    reason: string | null;
    at: string;
  }[];
}

/** The dashboard's model of a queue, fed with its events; see the module doc. */
export class DashboardModel {
  /** The workers, and the tasks they run. */
  readonly monitor: QueueMonitor;
  #queue: string;
  /** Task events by arrival, for the timeline. */
  #recent: { ms: number; event: TareasEvent }[] = [];
  /** `worker.online` and `worker.offline` events, likewise, bounded apart. */
  #workerEvents: { ms: number; event: TareasEvent }[] = [];
  #failures: TaskEvent[] = [];
  /** Completions by second. */
  #rate = new Map<number, number>();

  /** An empty model of `queue`. */
  constructor(queue: string) {
    this.#queue = queue;
    this.monitor = new QueueMonitor(queue);
  }

  /** Takes in one event, received at `now`; returns whether it concerns a task. */
  observe(event: TareasEvent, now: number = Date.now()): boolean {
    this.monitor.observe(event, now);
    if (isTaskEvent(event) && typeof event.taskId === "string") {
      this.#recent.push({ ms: now, event });
      if (this.#recent.length > MAX_EVENTS) {
        this.#recent.splice(0, this.#recent.length - MAX_EVENTS);
      }
      if (event.type === "task.failed" || event.type === "task.dead") {
        this.#failures.unshift(event);
        this.#failures.length = Math.min(this.#failures.length, MAX_FAILURES);
      }
      if (event.type === "task.completed") {
        const second = Math.floor(now / 1000);
        this.#rate.set(second, (this.#rate.get(second) ?? 0) + 1);
      }
      return true;
    }
    if (event.type === "worker.online" || event.type === "worker.offline") {
      this.#workerEvents.push({ ms: now, event });
      if (this.#workerEvents.length > MAX_WORKER_EVENTS) this.#workerEvents.shift();
    }
    return false;
  }

  /** The `state` message at `now`; forgets what has left the window. */
  state(queue: QueueView, now: number = Date.now()): PageState {
    const cutoff = now - WINDOW_MS;
    this.#forget(cutoff, now);
    const snapshot = this.monitor.snapshot(now);
    const shownWorkers = snapshot.workers.slice(0, MAX_WORKER_ROWS); // online first
    const nowSecond = Math.floor(now / 1000);
    return {
      now,
      queue: this.#queue,
      error: queue.error ?? null,
      declared: queue.declared,
      listening: queue.listening,
      snapshot: { ...snapshot, workers: shownWorkers.map(workerRow) },
      /** Workers tracked and not sent: past MAX_WORKER_ROWS. */
      workersNotShown: snapshot.workers.length - shownWorkers.length,
      timeline: this.#timeline(snapshot, cutoff, now),
      rate: Array.from({ length: 60 }, (_, i) => this.#rate.get(nowSecond - 59 + i) ?? 0),
      failures: this.#failures.map((event) => ({
        type: event.type,
        worker: event.worker,
        taskId: event.taskId,
        seq: event.seq,
        attempt: event.attempt,
        reason: typeof event.reason === "string" ? clip(event.reason) : null,
        at: event.at,
      })),
    };
  }

  #forget(cutoff: number, now: number): void {
    for (const list of [this.#recent, this.#workerEvents]) {
      let drop = 0;
      while (drop < list.length && list[drop]!.ms < cutoff) drop++;
      if (drop > 0) list.splice(0, drop);
    }
    for (const second of this.#rate.keys()) {
      if (second < now / 1000 - RATE_SECONDS) this.#rate.delete(second);
    }
  }

  /** The timeline of the window, its running bars with the progress their tasks reported. */
  #timeline(snapshot: MonitorSnapshot, cutoff: number, now: number): PageState["timeline"] {
    const lost = snapshot.workers.filter((w) => w.state === "lost").map((w) => w.name);
    const timeline = buildTimeline(
      [...this.#workerEvents, ...this.#recent].map((entry) => entry.event),
      {
        killed: lost,
        now: new Date(now),
        // Events stamped before the window or after now (by more than clocks differ) are forged
        // or from a wrong clock: they would stretch or squash the page's timeline.
        startedAt: cutoff,
        exactAttempts: MAX_EVENTS, // the page draws bars, never strips
        maxRows: MAX_WORKER_ROWS,
      },
    );
    const progress = new Map<string, ProgressView>();
    for (const worker of snapshot.workers) {
      for (const task of worker.running) {
        if (task.progress !== undefined) {
          progress.set(`${task.taskId} ${task.attempt}`, progressView(task.progress));
        }
      }
    }
    return {
      rows: timeline.rows.map((row) => ({
        worker: row.worker,
        lanes: row.lanes,
        bars: row.bars.map((bar) => ({
          taskId: bar.taskId,
          seq: bar.seq,
          attempt: bar.attempt,
          start: bar.start.getTime(),
          end: bar.end.getTime(),
          status: bar.status,
          redelivered: bar.redelivered,
          lane: bar.lane,
          reason: bar.reason === undefined ? null : clip(bar.reason),
          progress: bar.status === "running"
            ? progress.get(`${bar.taskId} ${bar.attempt}`) ?? null
            : null,
        })),
      })),
      workersNotShown: timeline.workersNotShown,
      outOfRange: timeline.outOfRange,
    };
  }
}

function workerRow(worker: WorkerView): WorkerRow {
  const { running, ...rest } = worker;
  return {
    ...rest,
    running: running.slice(0, MAX_RUNNING_SHOWN).map(runningView),
    runningNotShown: Math.max(0, running.length - MAX_RUNNING_SHOWN),
  };
}

function runningView(task: RunningTask): RunningView {
  return {
    taskId: task.taskId,
    seq: task.seq,
    // The default name says nothing: the page shows `#3 40%`, and `#3 resize 40%` for a name.
    name: task.name === undefined || task.name === DEFAULT_NAME ? null : task.name,
    attempt: task.attempt,
    progress: task.progress === undefined ? null : progressView(task.progress),
  };
}

/** A fraction as it is; an object as its JSON, cut to {@linkcode MAX_PROGRESS_TEXT}. */
function progressView(progress: Progress): ProgressView {
  if (typeof progress === "number") return progress;
  const json = JSON.stringify(progress);
  return json.length <= MAX_PROGRESS_TEXT ? json : `${json.slice(0, MAX_PROGRESS_TEXT - 1)}…`;
}

/** `text`, cut to {@linkcode MAX_TEXT} characters. */
export function clip(text: string): string {
  return text.length <= MAX_TEXT ? text : `${text.slice(0, MAX_TEXT)}…`;
}
