/**
 * Every attempt of a run, as a run record keeps it for the timeline: the starts not yet ended,
 * one exact bar per ended attempt while the run is small, and counts per time bucket (the strips
 * of `_strips.ts`) once it has more attempts than `exactAttempts`. A snapshot decides how the
 * attempts without an end event ended.
 * @module
 */
import type {
  BarStatus,
  BuildTimelineOptions,
  Timeline,
  TimelineBar,
  TimelineRow,
} from "../timeline.ts";
import { Strips, type StripView } from "./_strips.ts";
import type { TaskFields } from "./_task_fields.ts";
import type { Bar, Open, WorkerRoster, WorkerState } from "./_workers.ts";

/** Workers a timeline draws at most, by default: the busiest. */
const DEFAULT_MAX_ROWS = 100;

/** What a timeline tells that the record, not its attempts, counted. */
export interface RecordCounted {
  /** Tasks with an attempt drawn. */
  tasks: number;
  /** Events whose time was outside the run's window. */
  outOfRange: number;
}

/** The attempts of a run, as they start and end, for the run's timeline. */
export class AttemptLog {
  readonly #roster: WorkerRoster;
  readonly #exactAttempts: number;
  /** Events stamped earlier are outside the run's window. */
  readonly #notBefore: number;
  /** The highest attempt number seen of a task, in any of its events. */
  readonly #highestAttempt: (task: number) => number;
  readonly #strips: Strips;

  /** Starts not yet ended, by task: few (attempts in flight, and those of killed workers). */
  readonly #openByTask = new Map<number, Open[]>();
  readonly #ended: Record<BarStatus, number> = {
    completed: 0,
    failed: 0,
    dead: 0,
    interrupted: 0,
    running: 0,
  };
  #firstMs = Infinity;
  #lastMs = -Infinity;
  #earliestBarMs = Infinity;
  #bars = 0;
  #opens = 0;
  #aggregated = false;

  /**
   * An empty log of the attempts of the workers of `roster`: exact up to `exactAttempts`, bars
   * drawn from no earlier than `notBefore`.
   */
  constructor(
    roster: WorkerRoster,
    options: {
      exactAttempts: number;
      notBefore: number;
      highestAttempt: (task: number) => number;
    },
  ) {
    this.#roster = roster;
    this.#exactAttempts = options.exactAttempts;
    this.#notBefore = options.notBefore;
    this.#highestAttempt = options.highestAttempt;
    this.#strips = new Strips(roster);
  }

  /** Notes that `worker` sent an event stamped `ms`. */
  seen(worker: WorkerState, ms: number): void {
    worker.firstMs = Math.min(worker.firstMs, ms);
    worker.lastMs = Math.max(worker.lastMs, ms);
    this.#firstMs = Math.min(this.#firstMs, ms);
    this.#lastMs = Math.max(this.#lastMs, ms);
  }

  /** A `task.started` of task `task` (its index in the record) on `worker`, at `ms`. */
  start(task: number, taskId: string, worker: WorkerState, fields: TaskFields, ms: number): void {
    const open: Open = {
      task,
      taskId,
      seq: fields.seq,
      attempt: fields.attempt,
      redelivered: fields.attempt > 1 || fields.redelivered,
      startMs: ms,
      nextStartMs: Infinity,
    };
    let others = this.#openByTask.get(task);
    if (others === undefined) {
      others = [];
      this.#openByTask.set(task, others);
    }
    for (const other of others) {
      if (other.startMs < ms) other.nextStartMs = Math.min(other.nextStartMs, ms);
      else if (other.startMs > ms) open.nextStartMs = Math.min(open.nextStartMs, other.startMs);
    }
    others.push(open);
    worker.open.push(open);
    worker.attempts++;
    this.#opens++;
    if (!this.#aggregated && this.#bars + this.#opens > this.#exactAttempts) this.#aggregate();
  }

  /** An end event (`status`) of task `task` on `worker`, at `ms`, with or without its start. */
  end(
    task: number,
    taskId: string,
    worker: WorkerState,
    fields: TaskFields,
    ms: number,
    status: BarStatus,
  ): void {
    const index = worker.open.findIndex((open) =>
      open.task === task && open.attempt === fields.attempt
    );
    const open = index === -1 ? undefined : worker.open.splice(index, 1)[0];
    if (open !== undefined) {
      this.#opens--;
      const others = this.#openByTask.get(task) ?? [];
      others.splice(others.indexOf(open), 1);
      if (others.length === 0) this.#openByTask.delete(task);
    }
    if (open === undefined) worker.attempts++;
    // Without its start, the bar is drawn from its duration, which does not reach before the run.
    const startMs = open?.startMs ?? Math.max(this.#notBefore, ms - fields.durationMs);
    this.#earliestBarMs = Math.min(this.#earliestBarMs, startMs);
    this.#ended[status]++;
    const bar: Bar = {
      taskId: open?.taskId ?? taskId,
      seq: open?.seq ?? fields.seq,
      attempt: open?.attempt ?? fields.attempt,
      redelivered: open?.redelivered ?? (fields.attempt > 1 || fields.redelivered),
      startMs,
      endMs: Math.max(startMs, ms),
      status,
      reason: fields.reason,
    };
    if (this.#aggregated) {
      this.#strips.add(worker, bar.endMs, status);
      return;
    }
    worker.bars.push(bar);
    this.#bars++;
    if (this.#bars + this.#opens > this.#exactAttempts) this.#aggregate();
  }

  /**
   * The timeline of the run so far (a snapshot); see `buildTimeline` (`replay.ts`) for how attempts
   * without an end event are drawn.
   */
  timeline(options: BuildTimelineOptions, counted: RecordCounted): Timeline {
    const killed = new Set(options.killed ?? []);
    const nowMs = options.now?.getTime();
    const firstMs = Number.isFinite(this.#firstMs) ? this.#firstMs : nowMs ?? 0;
    const startMs = Math.min(firstMs, this.#earliestBarMs);
    const endMs = Math.max(
      Number.isFinite(this.#lastMs) ? this.#lastMs : firstMs,
      nowMs ?? -Infinity,
    );
    const counts = { ...this.#ended };
    const aggregated = this.#aggregated;
    const strips = aggregated ? this.#strips.view(endMs) : undefined;

    const shown = [...this.#roster.values()].filter((worker) => Number.isFinite(worker.firstMs));
    const maxRows = Math.max(1, Math.floor(options.maxRows ?? DEFAULT_MAX_ROWS));
    if (shown.length > maxRows) {
      // The busiest workers: names that never ran a task (forged ones, say) go first.
      shown.sort((a, b) => b.attempts - a.attempts || a.firstMs - b.firstMs || a.id - b.id);
    }
    const notShown = Math.max(0, shown.length - maxRows);
    const workers = shown.slice(0, maxRows).sort((a, b) => a.firstMs - b.firstMs || a.id - b.id);
    const rows: TimelineRow[] = [];
    for (const worker of workers) {
      rows.push(this.#row(worker, killed.has(worker.name), endMs, counts, strips));
    }
    return {
      rows,
      start: new Date(startMs),
      end: new Date(endMs),
      tasks: counted.tasks,
      counts,
      aggregated,
      workersNotShown: notShown + this.#roster.forgotten,
      untrackedEvents: this.#roster.untrackedEvents,
      outOfRange: counted.outOfRange,
    };
  }

  /**
   * The row of `worker` in a snapshot ending at `endMs`: its attempts without an end are decided
   * and added to `counts`, and drawn on its strip when the timeline is aggregated (`strips`).
   */
  #row(
    worker: WorkerState,
    isKilled: boolean,
    endMs: number,
    counts: Record<BarStatus, number>,
    strips: StripView | undefined,
  ): TimelineRow {
    const bars = strips !== undefined ? [] : worker.bars.map(toTimelineBar);
    const strip = strips?.copy(worker.strip);
    for (const open of worker.open) {
      const bar = this.#resolve(open, worker, isKilled, endMs);
      counts[bar.status]++;
      if (strip !== undefined) strips?.add(strip, bar.endMs, bar.status);
      else bars.push(toTimelineBar(bar));
    }
    bars.sort((a, b) => a.start.getTime() - b.start.getTime() || a.end.getTime() - b.end.getTime());
    const row: TimelineRow = {
      worker: worker.name,
      bars,
      lanes: assignLanes(bars),
      killed: isKilled,
      firstSeen: new Date(worker.firstMs),
      lastSeen: new Date(worker.lastMs),
    };
    if (strip !== undefined) row.strip = strip;
    return row;
  }

  /** Turns every exact bar into counts per worker and time bucket, for good. */
  #aggregate(): void {
    this.#aggregated = true;
    this.#strips.begin(Math.min(this.#firstMs, this.#earliestBarMs), this.#lastMs);
    for (const worker of this.#roster.values()) {
      for (const bar of worker.bars) this.#strips.add(worker, bar.endMs, bar.status);
      worker.bars = [];
    }
  }

  /** Decides how an attempt with no end event ended, as of `endMs`. */
  #resolve(open: Open, worker: WorkerState, killed: boolean, endMs: number): Bar {
    const nextStart = Number.isFinite(open.nextStartMs) ? open.nextStartMs : undefined;
    const wentOffline = worker.offlineMs >= open.startMs;
    const superseded = this.#highestAttempt(open.task) > open.attempt;
    const bar: Bar = {
      taskId: open.taskId,
      seq: open.seq,
      attempt: open.attempt,
      redelivered: open.redelivered,
      startMs: open.startMs,
      endMs,
      status: "running",
      reason: undefined,
    };
    if (!killed && nextStart === undefined && !wentOffline && !superseded) return bar;
    const aliveUntil = worker.lastMs > open.startMs ? worker.lastMs : undefined;
    const candidates = [aliveUntil, nextStart].filter((ms) => ms !== undefined);
    bar.status = "interrupted";
    bar.endMs = Math.max(open.startMs, candidates.length > 0 ? Math.min(...candidates) : endMs);
    return bar;
  }
}

function toTimelineBar(bar: Bar): TimelineBar {
  const out: TimelineBar = {
    taskId: bar.taskId,
    seq: bar.seq,
    attempt: bar.attempt,
    label: `#${bar.seq}`,
    start: new Date(bar.startMs),
    end: new Date(bar.endMs),
    durationMs: bar.endMs - bar.startMs,
    status: bar.status,
    redelivered: bar.redelivered,
    lane: 0,
  };
  if (bar.reason !== undefined) out.reason = bar.reason;
  return out;
}

/** Puts each bar (sorted by start) in the first lane free at its start; returns the lane count. */
function assignLanes(bars: TimelineBar[]): number {
  const laneEnds: number[] = [];
  for (const bar of bars) {
    const start = bar.start.getTime();
    let lane = laneEnds.findIndex((end) => end <= start);
    if (lane === -1) lane = laneEnds.length;
    laneEnds[lane] = bar.end.getTime();
    bar.lane = lane;
  }
  return Math.max(1, laneEnds.length);
}
