/**
 * The record of a run, kept as its events arrive and never as a list of them: per task a few
 * bytes of outcome, per worker its totals, the notable tasks (bounded lists plus counts), and the
 * timeline (one bar per attempt while the run is small, counts per time bucket beyond). The
 * summary and the timeline of a run of a million tasks fit in a few tens of megabytes.
 *
 * @example
 * ```ts
 * const record = new RunRecord(tasks.map((task) => task.id));
 * for await (const update of watcher) if (update.kind === "event") record.record(update.event);
 * // … once every task is done:
 * console.log(renderSummary(record.summary()));
 * console.log(renderTimelineText(record.timeline(), { color: Deno.stdout.isTerminal() }));
 * ```
 * @module
 */

import { isTaskEvent, type TareasEvent } from "../core/events.ts";
import type { RunSummary, TaskNote, WorkerTotals } from "./summary.ts";
import type {
  BarStatus,
  BuildTimelineOptions,
  Timeline,
  TimelineBar,
  TimelineRow,
  TimelineStrip,
} from "./timeline.ts";

/** Options for {@linkcode RunRecord}. */
export interface RunRecordOptions {
  /**
   * Attempts (ended or not) the timeline keeps as exact bars; past this, every worker's attempts
   * are counted per status over time buckets instead ({@linkcode Timeline.aggregated}).
   * @default {3000}
   */
  exactAttempts?: number;
  /**
   * Tasks kept in each list of notable tasks (redelivered, duplicates, dead-lettered, missing);
   * past this they are only counted.
   * @default {1000}
   */
  notableLimit?: number;
  /**
   * When the run started, in ms since the epoch by this machine's clock: events stamped more
   * than `maxSkewMs` earlier count for the summary but not for the timeline (see
   * {@linkcode Timeline.outOfRange}). `-Infinity` for no lower bound (a record of past events).
   * @default {the time the record is made}
   */
  startedAt?: number;
  /**
   * How far an event's `at` may be from this machine's clock (other machines' clocks differ):
   * before `startedAt`, or after the time it is recorded.
   * @default {60_000}
   */
  maxSkewMs?: number;
  /**
   * Most workers tracked one by one. A new name past it makes the record forget the worker seen
   * least recently that never reported a task; when every worker tracked has, the new one is not
   * tracked: its events still count for their tasks, its completions are summed in
   * {@linkcode RunSummary.untracked}, and nothing of it is drawn.
   * @default {1000}
   */
  maxWorkers?: number;
}

/** What the record knows of one task. */
export interface TaskOutcome {
  /** Completions seen (more than 1 for duplicates), saturating at 255. */
  completions: number;
  /** Whether a worker dead-lettered it. */
  dead: boolean;
  /** The highest attempt number seen in its events, saturating at 65535 (0 before any). */
  attempts: number;
  /** The worker that completed it first. */
  firstWorker?: string;
}

/** How far a run is, cheap enough to ask after every event. */
export interface RunCounts {
  /** Tasks in the run: the ids given, or every task seen in an event. */
  total: number;
  /** Distinct tasks completed at least once. */
  completed: number;
  /** Distinct tasks dead-lettered. */
  deadLettered: number;
  /** Distinct tasks completed or dead-lettered: the run is over when this reaches `total`. */
  finished: number;
  /** `total - finished`. */
  missing: number;
  /** Events recorded so far, of any worker and task: a sign of life. */
  events: number;
}

/**
 * What the record left out to stay bounded: events from anyone who can publish to the events
 * exchange are not to be trusted with its memory or its drawing.
 */
export interface RecordBounds {
  /** Events whose time was outside the run's window: counted, not drawn. */
  outOfRange: number;
  /** Workers forgotten because more than `maxWorkers` were named (they never reported a task). */
  workersForgotten: number;
  /** Events of workers not tracked because `maxWorkers` workers had reported tasks already. */
  untrackedEvents: number;
}

const DEFAULT_EXACT_ATTEMPTS = 3000;
const DEFAULT_NOTABLE_LIMIT = 1000;
const DEFAULT_MAX_SKEW_MS = 60_000;
const DEFAULT_MAX_WORKERS = 1000;
/** Workers a timeline draws at most, by default: the busiest. */
const DEFAULT_MAX_ROWS = 100;
/** Buckets of a strip; when an attempt ends past the last one, buckets merge in pairs. */
const STRIP_BUCKETS = 512;
/** The statuses a strip stores; `running` attempts are added when a timeline is drawn. */
const STORED: readonly BarStatus[] = ["completed", "failed", "dead", "interrupted"];
const STORED_COUNT = STORED.length;
/** Longest failure reason kept, in UTF-16 units. */
const REASON_LIMIT = 500;
const MAX_COMPLETIONS = 0xff;
const MAX_ATTEMPT = 0xffff;
const INITIAL_CAPACITY = 1024;

const END_STATUS = {
  "task.completed": "completed",
  "task.failed": "failed",
  "task.dead": "dead",
} as const satisfies Record<string, BarStatus>;

// Bits of a task's flags.
const ATTEMPTED = 1;
const DEAD = 2;

/** A `task.started` not yet matched with its end event. */
interface Open {
  task: number;
  taskId: string;
  seq: number;
  attempt: number;
  redelivered: boolean;
  startMs: number;
  /** The first start of the same task after this one, or Infinity. */
  nextStartMs: number;
}

/** A finished attempt, while the timeline is exact. */
interface Bar {
  taskId: string;
  seq: number;
  attempt: number;
  redelivered: boolean;
  startMs: number;
  endMs: number;
  status: BarStatus;
  reason: string | undefined;
}

interface WorkerState {
  name: string;
  /** 1-based, as stored in the per-task `firstWorker` array (0 there means none). */
  id: number;
  /** Attempts seen (started, or ended without a start seen); 0 for a worker only heard of. */
  attempts: number;
  firstMs: number;
  lastMs: number;
  offlineMs: number;
  completed: number;
  busyMs: number;
  open: Open[];
  bars: Bar[];
  /** Counts per bucket and stored status (`bucket * STORED_COUNT + status`), once aggregated. */
  strip: Uint32Array | undefined;
}

/** A task event's fields, checked: events come from anyone who can publish to the exchange. */
interface TaskFields {
  seq: number;
  attempt: number;
  redelivered: boolean;
  durationMs: number;
  reason: string | undefined;
}

type NoteList = "redelivered" | "duplicates" | "dead";

/**
 * Records a run from its events, one {@linkcode RunRecord.record} call per event as it arrives,
 * and gives its {@linkcode RunRecord.summary}, {@linkcode RunRecord.timeline} and
 * {@linkcode RunRecord.counts} at any time. Memory: about 50 bytes per task when the task ids are
 * given (a map entry plus 8 bytes of outcome), about 110 when they are learnt from the events
 * (the id strings too); the rest is bounded (exact bars up to `exactAttempts`, strips of
 * 512 buckets per worker, `notableLimit` notes per list).
 *
 * Task events of tasks outside `taskIds` are ignored; worker events always count. Events whose
 * `at` does not parse, or lies outside the run's window (before `startedAt`, or later than the
 * time the event is recorded, by more than `maxSkewMs`), count for the summary but not for the
 * timeline. At most `maxWorkers` workers are tracked. Events may arrive in any order; the
 * timeline is exactly `buildTimeline`'s (`replay.ts`) when they arrive in time order.
 *
 * @example
 * ```ts
 * const record = new RunRecord(["7d0f…", "a31c…"]);
 * record.record(event);
 * if (record.counts().missing === 0) console.log(renderSummary(record.summary()));
 * ```
 */
export class RunRecord {
  readonly #fixed: boolean;
  readonly #exactAttempts: number;
  readonly #notableLimit: number;
  /** Events stamped earlier are outside the run's window. */
  readonly #notBefore: number;
  readonly #maxSkewMs: number;
  readonly #maxWorkers: number;
  readonly #index = new Map<string, number>();
  #capacity: number;
  #completions: Uint8Array;
  #attempts: Uint16Array;
  #flags: Uint8Array;
  #firstWorker: Uint32Array;

  #events = 0;
  #completed = 0;
  #deadLettered = 0;
  #finished = 0;
  #attempted = 0;

  /** By name, in the order they were first tracked. */
  readonly #workers = new Map<string, WorkerState>();
  readonly #byId = new Map<number, WorkerState>();
  #nextId = 1;
  /** Workers that never reported a task, the one seen least recently first: forgotten first. */
  readonly #idle = new Set<WorkerState>();
  readonly #bounds: RecordBounds = { outOfRange: 0, workersForgotten: 0, untrackedEvents: 0 };
  readonly #untracked: WorkerTotals = { completed: 0, busyMs: 0 };
  readonly #completionOrder: WorkerState[] = [];
  readonly #notes: Record<NoteList, TaskNote[]> = { redelivered: [], duplicates: [], dead: [] };
  readonly #noted: Record<NoteList, number> = { redelivered: 0, duplicates: 0, dead: 0 };

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
  #stripStartMs = 0;
  #bucketMs = 1;

  /**
   * Starts an empty record. With `taskIds`, the run is those tasks (events of others are
   * ignored, tasks never heard of count as missing); without, every task seen in an event.
   */
  constructor(taskIds?: Iterable<string>, options: RunRecordOptions = {}) {
    this.#exactAttempts = Math.max(0, Math.floor(options.exactAttempts ?? DEFAULT_EXACT_ATTEMPTS));
    this.#notableLimit = Math.max(0, Math.floor(options.notableLimit ?? DEFAULT_NOTABLE_LIMIT));
    this.#maxSkewMs = Math.max(0, options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS);
    this.#notBefore = (options.startedAt ?? Date.now()) - this.#maxSkewMs;
    this.#maxWorkers = Math.max(1, Math.floor(options.maxWorkers ?? DEFAULT_MAX_WORKERS));
    this.#fixed = taskIds !== undefined;
    if (taskIds !== undefined) {
      for (const id of taskIds) {
        if (!this.#index.has(id)) this.#index.set(id, this.#index.size);
      }
    }
    this.#capacity = this.#fixed ? this.#index.size : INITIAL_CAPACITY;
    this.#completions = new Uint8Array(this.#capacity);
    this.#attempts = new Uint16Array(this.#capacity);
    this.#flags = new Uint8Array(this.#capacity);
    this.#firstWorker = new Uint32Array(this.#capacity);
  }

  /**
   * Adds tasks to a run that was started with task ids (a producer learns its ids chunk by chunk,
   * and adds each chunk before publishing it, so no event can come before its task).
   */
  expect(taskIds: Iterable<string>): void {
    for (const id of taskIds) {
      if (this.#index.has(id)) continue;
      if (this.#index.size >= this.#capacity) this.#grow();
      this.#index.set(id, this.#index.size);
    }
  }

  /**
   * Takes one event into the record, received at `receivedAt` (ms since the epoch, this
   * machine's clock); malformed fields are ignored or replaced by defaults.
   */
  record(event: TareasEvent, receivedAt: number = Date.now()): void {
    if (typeof event !== "object" || event === null || typeof event.worker !== "string") return;
    this.#events++;
    const ms = this.#time(event.at, receivedAt);
    const timed = Number.isFinite(ms);
    if (!isTaskEvent(event)) {
      if (!timed) return;
      const worker = this.#worker(event.worker, false);
      if (worker === undefined) return;
      this.#seen(worker, ms);
      if (event.type === "worker.offline") worker.offlineMs = Math.max(worker.offlineMs, ms);
      return;
    }
    if (typeof event.taskId !== "string") return;
    const task = this.#task(event.taskId);
    if (task === undefined) return;
    const fields = taskFields(event);
    const worker = this.#worker(event.worker, true);
    this.#attempts[task] = Math.max(
      this.#attempts[task] ?? 0,
      Math.min(MAX_ATTEMPT, fields.attempt),
    );
    if (event.type === "task.completed") {
      this.#complete(task, event.taskId, worker ?? event.worker, fields);
    }
    if (event.type === "task.dead") this.#dead(task, event.taskId, worker ?? event.worker, fields);
    if (!timed || worker === undefined) return;

    this.#seen(worker, ms);
    const flags = this.#flags[task] ?? 0;
    if ((flags & ATTEMPTED) === 0) {
      this.#flags[task] = flags | ATTEMPTED;
      this.#attempted++;
    }
    if (event.type === "task.started") {
      this.#start(task, event.taskId, worker, fields, ms);
    } else if (event.type !== "task.progress") {
      this.#end(task, event.taskId, worker, fields, ms, END_STATUS[event.type]);
    }
  }

  /** What the record left out so far to stay bounded. */
  bounds(): RecordBounds {
    return { ...this.#bounds };
  }

  /** The run's progress so far. */
  counts(): RunCounts {
    const total = this.#index.size;
    return {
      total,
      completed: this.#completed,
      deadLettered: this.#deadLettered,
      finished: this.#finished,
      missing: total - this.#finished,
      events: this.#events,
    };
  }

  /** What the record knows of one task, or undefined when it is not part of the run. */
  outcome(taskId: string): TaskOutcome | undefined {
    const task = this.#index.get(taskId);
    if (task === undefined) return undefined;
    const outcome: TaskOutcome = {
      completions: this.#completions[task] ?? 0,
      dead: ((this.#flags[task] ?? 0) & DEAD) !== 0,
      attempts: this.#attempts[task] ?? 0,
    };
    const first = this.#byId.get(this.#firstWorker[task] ?? 0);
    if (first !== undefined) outcome.firstWorker = first.name;
    return outcome;
  }

  /** The summary of the run so far (a snapshot: later events do not change it). */
  summary(): RunSummary {
    const counts = this.counts();
    const missingIds: string[] = [];
    if (counts.missing > 0 && this.#notableLimit > 0) {
      for (const [id, task] of this.#index) {
        if (this.#completions[task] === 0 && ((this.#flags[task] ?? 0) & DEAD) === 0) {
          missingIds.push(id);
          if (missingIds.length >= this.#notableLimit) break;
        }
      }
    }
    const workers = new Map<string, WorkerTotals>();
    for (const worker of this.#completionOrder) {
      workers.set(worker.name, { completed: worker.completed, busyMs: worker.busyMs });
    }
    const notes = this.#notes;
    return {
      total: counts.total,
      completed: counts.completed,
      deadLettered: counts.deadLettered,
      missing: counts.missing,
      redelivered: notes.redelivered.map((note) => ({ ...note })),
      duplicates: notes.duplicates.map((note) => ({ ...note })),
      dead: notes.dead.map((note) => ({ ...note })),
      missingIds,
      omitted: {
        redelivered: this.#noted.redelivered - notes.redelivered.length,
        duplicates: this.#noted.duplicates - notes.duplicates.length,
        dead: this.#noted.dead - notes.dead.length,
        missingIds: counts.missing - missingIds.length,
      },
      workers,
      untracked: { ...this.#untracked },
    };
  }

  /**
   * The timeline of the run so far (a snapshot); see `buildTimeline` (`replay.ts`) for how attempts
   * without an end event are drawn.
   */
  timeline(options: BuildTimelineOptions = {}): Timeline {
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
    const strips = aggregated
      ? new StripView(this.#stripStartMs, this.#bucketMs, endMs)
      : undefined;

    const shown = [...this.#workers.values()].filter((worker) => Number.isFinite(worker.firstMs));
    const maxRows = Math.max(1, Math.floor(options.maxRows ?? DEFAULT_MAX_ROWS));
    if (shown.length > maxRows) {
      // The busiest workers: names that never ran a task (forged ones, say) go first.
      shown.sort((a, b) => b.attempts - a.attempts || a.firstMs - b.firstMs || a.id - b.id);
    }
    const notShown = Math.max(0, shown.length - maxRows);
    const workers = shown.slice(0, maxRows).sort((a, b) => a.firstMs - b.firstMs || a.id - b.id);
    const rows: TimelineRow[] = [];
    for (const worker of workers) {
      const isKilled = killed.has(worker.name);
      const bars = aggregated ? [] : worker.bars.map(toTimelineBar);
      const strip = strips?.copy(worker.strip);
      for (const open of worker.open) {
        const bar = this.#resolve(open, worker, isKilled, endMs);
        counts[bar.status]++;
        if (strip !== undefined) strips?.add(strip, bar.endMs, bar.status);
        else bars.push(toTimelineBar(bar));
      }
      bars.sort((a, b) =>
        a.start.getTime() - b.start.getTime() || a.end.getTime() - b.end.getTime()
      );
      const row: TimelineRow = {
        worker: worker.name,
        bars,
        lanes: assignLanes(bars),
        killed: isKilled,
        firstSeen: new Date(worker.firstMs),
        lastSeen: new Date(worker.lastMs),
      };
      if (strip !== undefined) row.strip = strip;
      rows.push(row);
    }
    return {
      rows,
      start: new Date(startMs),
      end: new Date(endMs),
      tasks: this.#attempted,
      counts,
      aggregated,
      workersNotShown: notShown + this.#bounds.workersForgotten,
      untrackedEvents: this.#bounds.untrackedEvents,
      outOfRange: this.#bounds.outOfRange,
    };
  }

  /** The time of an event, or NaN when it does not parse or is outside the run's window. */
  #time(at: unknown, receivedAt: number): number {
    const ms = typeof at === "string" ? Date.parse(at) : NaN;
    if (!Number.isFinite(ms)) return NaN;
    if (ms < this.#notBefore || ms > receivedAt + this.#maxSkewMs) {
      this.#bounds.outOfRange++;
      return NaN;
    }
    return ms;
  }

  #task(taskId: string): number | undefined {
    const known = this.#index.get(taskId);
    if (known !== undefined || this.#fixed) return known;
    const task = this.#index.size;
    if (task >= this.#capacity) this.#grow();
    this.#index.set(taskId, task);
    return task;
  }

  #grow(): void {
    this.#capacity = Math.max(INITIAL_CAPACITY, this.#capacity * 2);
    const grown = <T extends Uint8Array | Uint16Array | Uint32Array>(
      old: T,
      make: (n: number) => T,
    ) => {
      const array = make(this.#capacity);
      array.set(old);
      return array;
    };
    this.#completions = grown(this.#completions, (n) => new Uint8Array(n));
    this.#attempts = grown(this.#attempts, (n) => new Uint16Array(n));
    this.#flags = grown(this.#flags, (n) => new Uint8Array(n));
    this.#firstWorker = grown(this.#firstWorker, (n) => new Uint32Array(n));
  }

  /**
   * The worker named `name`, tracked from now on if it was not; undefined when it cannot be (see
   * {@linkcode RunRecordOptions.maxWorkers}). `task`: whether the event is a task's.
   */
  #worker(name: string, task: boolean): WorkerState | undefined {
    let worker = this.#workers.get(name);
    if (worker !== undefined) {
      if (this.#idle.delete(worker) && !task) this.#idle.add(worker); // now seen most recently
      return worker;
    }
    if (this.#workers.size >= this.#maxWorkers) {
      const forget = this.#idle.values().next().value;
      if (forget === undefined) {
        this.#bounds.untrackedEvents++;
        return undefined;
      }
      this.#idle.delete(forget);
      this.#workers.delete(forget.name);
      this.#byId.delete(forget.id);
      this.#bounds.workersForgotten++;
    }
    worker = {
      name,
      id: this.#nextId++,
      attempts: 0,
      firstMs: Infinity,
      lastMs: -Infinity,
      offlineMs: -Infinity,
      completed: 0,
      busyMs: 0,
      open: [],
      bars: [],
      strip: undefined,
    };
    this.#workers.set(name, worker);
    this.#byId.set(worker.id, worker);
    if (!task) this.#idle.add(worker);
    return worker;
  }

  #seen(worker: WorkerState, ms: number): void {
    worker.firstMs = Math.min(worker.firstMs, ms);
    worker.lastMs = Math.max(worker.lastMs, ms);
    this.#firstMs = Math.min(this.#firstMs, ms);
    this.#lastMs = Math.max(this.#lastMs, ms);
  }

  /** A completion; `worker` is the name of a worker not tracked. */
  #complete(task: number, taskId: string, worker: WorkerState | string, fields: TaskFields): void {
    const before = this.#completions[task] ?? 0;
    this.#completions[task] = Math.min(MAX_COMPLETIONS, before + 1);
    const totals = typeof worker === "string" ? this.#untracked : worker;
    if (typeof worker !== "string" && worker.completed === 0) this.#completionOrder.push(worker);
    totals.completed++;
    totals.busyMs += fields.durationMs;
    const name = typeof worker === "string" ? worker : worker.name;
    if (before === 0) {
      this.#completed++;
      if (((this.#flags[task] ?? 0) & DEAD) === 0) this.#finished++;
      this.#firstWorker[task] = typeof worker === "string" ? 0 : worker.id;
      if (fields.attempt > 1) this.#note("redelivered", note(taskId, name, fields));
      return;
    }
    const duplicate = note(taskId, name, fields);
    const first = this.#byId.get(this.#firstWorker[task] ?? 0);
    if (first !== undefined) duplicate.firstWorker = first.name;
    this.#note("duplicates", duplicate);
  }

  #dead(task: number, taskId: string, worker: WorkerState | string, fields: TaskFields): void {
    const flags = this.#flags[task] ?? 0;
    if ((flags & DEAD) !== 0) return;
    this.#flags[task] = flags | DEAD;
    this.#deadLettered++;
    if (this.#completions[task] === 0) this.#finished++;
    const dead = note(taskId, typeof worker === "string" ? worker : worker.name, fields);
    if (fields.reason !== undefined) dead.reason = fields.reason;
    this.#note("dead", dead);
  }

  #note(list: NoteList, entry: TaskNote): void {
    this.#noted[list]++;
    if (this.#notes[list].length < this.#notableLimit) this.#notes[list].push(entry);
  }

  #start(task: number, taskId: string, worker: WorkerState, fields: TaskFields, ms: number): void {
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

  #end(
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
      this.#addToStrip(worker, bar.endMs, status);
      return;
    }
    worker.bars.push(bar);
    this.#bars++;
    if (this.#bars + this.#opens > this.#exactAttempts) this.#aggregate();
  }

  /** Turns every exact bar into counts per worker and time bucket, for good. */
  #aggregate(): void {
    this.#aggregated = true;
    this.#stripStartMs = Math.min(this.#firstMs, this.#earliestBarMs);
    const spanMs = Math.max(0, this.#lastMs - this.#stripStartMs);
    // Room to grow: the run so far fills half the buckets.
    this.#bucketMs = Math.max(1, Math.ceil((spanMs + 1) / (STRIP_BUCKETS / 2)));
    for (const worker of this.#workers.values()) {
      for (const bar of worker.bars) this.#addToStrip(worker, bar.endMs, bar.status);
      worker.bars = [];
    }
  }

  #addToStrip(worker: WorkerState, endMs: number, status: BarStatus): void {
    let bucket = Math.max(0, Math.floor((endMs - this.#stripStartMs) / this.#bucketMs));
    while (bucket >= STRIP_BUCKETS) {
      this.#coarsen();
      bucket = Math.floor((endMs - this.#stripStartMs) / this.#bucketMs);
    }
    worker.strip ??= new Uint32Array(STRIP_BUCKETS * STORED_COUNT);
    bump(worker.strip, bucket * STORED_COUNT + STORED.indexOf(status), 1);
  }

  /** Doubles the bucket width: merges every pair of buckets of every strip. */
  #coarsen(): void {
    for (const { strip } of this.#workers.values()) {
      if (strip === undefined) continue;
      for (let bucket = 0; bucket < STRIP_BUCKETS / 2; bucket++) {
        for (let s = 0; s < STORED_COUNT; s++) {
          strip[bucket * STORED_COUNT + s] = (strip[2 * bucket * STORED_COUNT + s] ?? 0) +
            (strip[(2 * bucket + 1) * STORED_COUNT + s] ?? 0);
        }
      }
      strip.fill(0, (STRIP_BUCKETS / 2) * STORED_COUNT);
    }
    this.#bucketMs *= 2;
  }

  /** Decides how an attempt with no end event ended, as of `endMs`. */
  #resolve(open: Open, worker: WorkerState, killed: boolean, endMs: number): Bar {
    const nextStart = Number.isFinite(open.nextStartMs) ? open.nextStartMs : undefined;
    const wentOffline = worker.offlineMs >= open.startMs;
    const superseded = (this.#attempts[open.task] ?? 0) > open.attempt;
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

/** The strips of one timeline snapshot: the record's buckets, merged so `endMs` fits. */
class StripView {
  readonly #startMs: number;
  readonly #factor: number;
  readonly #bucketMs: number;
  readonly #length: number;

  constructor(startMs: number, bucketMs: number, endMs: number) {
    let factor = 1;
    while ((endMs - startMs) / (bucketMs * factor) >= STRIP_BUCKETS) factor *= 2;
    this.#startMs = startMs;
    this.#factor = factor;
    this.#bucketMs = bucketMs * factor;
    this.#length = Math.max(1, Math.floor(Math.max(0, endMs - startMs) / this.#bucketMs) + 1);
  }

  copy(stored: Uint32Array | undefined): TimelineStrip {
    const counts = {} as Record<BarStatus, Uint32Array>;
    for (const status of [...STORED, "running" as const]) {
      counts[status] = new Uint32Array(this.#length);
    }
    if (stored !== undefined) {
      for (let bucket = 0; bucket < STRIP_BUCKETS; bucket++) {
        const to = Math.min(this.#length - 1, Math.floor(bucket / this.#factor));
        STORED.forEach((status, s) => {
          bump(counts[status], to, stored[bucket * STORED_COUNT + s] ?? 0);
        });
      }
    }
    return { start: new Date(this.#startMs), bucketMs: this.#bucketMs, counts };
  }

  add(strip: TimelineStrip, endMs: number, status: BarStatus): void {
    const bucket = Math.floor((endMs - this.#startMs) / this.#bucketMs);
    bump(strip.counts[status], Math.min(this.#length - 1, Math.max(0, bucket)), 1);
  }
}

function bump(counts: Uint32Array, index: number, by: number): void {
  counts[index] = (counts[index] ?? 0) + by;
}

function taskFields(event: TareasEvent & { taskId: string }): TaskFields {
  const { seq, attempt, redelivered, durationMs, reason } = event as unknown as Record<
    string,
    unknown
  >;
  return {
    seq: typeof seq === "number" && Number.isSafeInteger(seq) ? seq : 0,
    attempt: typeof attempt === "number" && Number.isSafeInteger(attempt) && attempt >= 1
      ? attempt
      : 1,
    redelivered: redelivered === true,
    durationMs: typeof durationMs === "number" && Number.isFinite(durationMs)
      ? Math.max(0, durationMs)
      : 0,
    reason: typeof reason === "string" ? reason.slice(0, REASON_LIMIT) : undefined,
  };
}

function note(taskId: string, worker: string, fields: TaskFields): TaskNote {
  return {
    seq: fields.seq,
    taskId,
    worker,
    attempt: fields.attempt,
    redelivered: fields.redelivered,
  };
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
