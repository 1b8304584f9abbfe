/**
 * The record of a run, kept as its events arrive and never as a list of them: per task a few
 * bytes of outcome, per worker its totals, the notable tasks (bounded lists plus counts), and the
 * timeline (one bar per attempt while the run is small, counts per time bucket beyond). The
 * summary and the timeline of a run of a million tasks fit in a few tens of megabytes.
 *
 * Its parts are in `run_record/`: its options and what it gives (`types.ts`), the workers tracked
 * (`_workers.ts`), the attempts kept for the timeline (`_attempts.ts`) and their strips once
 * aggregated (`_strips.ts`), and the checked fields of a task event (`_task_fields.ts`).
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
import type { BarStatus, BuildTimelineOptions, Timeline } from "./timeline.ts";
import { AttemptLog } from "./run_record/_attempts.ts";
import { type TaskFields, taskFields } from "./run_record/_task_fields.ts";
import { WorkerRoster, type WorkerState } from "./run_record/_workers.ts";
import type { RecordBounds, RunCounts, RunRecordOptions, TaskOutcome } from "./run_record/types.ts";

export type { RecordBounds, RunCounts, RunRecordOptions, TaskOutcome } from "./run_record/types.ts";

const DEFAULT_EXACT_ATTEMPTS = 3000;
const DEFAULT_NOTABLE_LIMIT = 1000;
const DEFAULT_MAX_SKEW_MS = 60_000;
const DEFAULT_MAX_WORKERS = 1000;
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
  readonly #notableLimit: number;
  /** Events stamped earlier are outside the run's window. */
  readonly #notBefore: number;
  readonly #maxSkewMs: number;
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

  readonly #workers: WorkerRoster;
  readonly #attemptLog: AttemptLog;
  /** Events whose time was outside the run's window. */
  #outOfRange = 0;
  readonly #untracked: WorkerTotals = { completed: 0, busyMs: 0 };
  readonly #completionOrder: WorkerState[] = [];
  readonly #notes: Record<NoteList, TaskNote[]> = { redelivered: [], duplicates: [], dead: [] };
  readonly #noted: Record<NoteList, number> = { redelivered: 0, duplicates: 0, dead: 0 };

  /**
   * Starts an empty record. With `taskIds`, the run is those tasks (events of others are
   * ignored, tasks never heard of count as missing); without, every task seen in an event.
   */
  constructor(taskIds?: Iterable<string>, options: RunRecordOptions = {}) {
    this.#notableLimit = Math.max(0, Math.floor(options.notableLimit ?? DEFAULT_NOTABLE_LIMIT));
    this.#maxSkewMs = Math.max(0, options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS);
    this.#notBefore = (options.startedAt ?? Date.now()) - this.#maxSkewMs;
    this.#workers = new WorkerRoster(
      Math.max(1, Math.floor(options.maxWorkers ?? DEFAULT_MAX_WORKERS)),
    );
    this.#attemptLog = new AttemptLog(this.#workers, {
      exactAttempts: Math.max(0, Math.floor(options.exactAttempts ?? DEFAULT_EXACT_ATTEMPTS)),
      notBefore: this.#notBefore,
      highestAttempt: (task) => this.#attempts[task] ?? 0,
    });
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
      const worker = this.#workers.get(event.worker, false);
      if (worker === undefined) return;
      this.#attemptLog.seen(worker, ms);
      if (event.type === "worker.offline") worker.offlineMs = Math.max(worker.offlineMs, ms);
      return;
    }
    if (typeof event.taskId !== "string") return;
    const task = this.#task(event.taskId);
    if (task === undefined) return;
    const fields = taskFields(event);
    const worker = this.#workers.get(event.worker, true);
    this.#attempts[task] = Math.max(
      this.#attempts[task] ?? 0,
      Math.min(MAX_ATTEMPT, fields.attempt),
    );
    if (event.type === "task.completed") {
      this.#complete(task, event.taskId, worker ?? event.worker, fields);
    }
    if (event.type === "task.dead") this.#dead(task, event.taskId, worker ?? event.worker, fields);
    if (!timed || worker === undefined) return;

    this.#attemptLog.seen(worker, ms);
    const flags = this.#flags[task] ?? 0;
    if ((flags & ATTEMPTED) === 0) {
      this.#flags[task] = flags | ATTEMPTED;
      this.#attempted++;
    }
    if (event.type === "task.started") {
      this.#attemptLog.start(task, event.taskId, worker, fields, ms);
    } else if (event.type !== "task.progress") {
      this.#attemptLog.end(task, event.taskId, worker, fields, ms, END_STATUS[event.type]);
    }
  }

  /** What the record left out so far to stay bounded. */
  bounds(): RecordBounds {
    return {
      outOfRange: this.#outOfRange,
      workersForgotten: this.#workers.forgotten,
      untrackedEvents: this.#workers.untrackedEvents,
    };
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
    const first = this.#workers.byId(this.#firstWorker[task] ?? 0);
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
    return this.#attemptLog.timeline(options, {
      tasks: this.#attempted,
      outOfRange: this.#outOfRange,
    });
  }

  /** The time of an event, or NaN when it does not parse or is outside the run's window. */
  #time(at: unknown, receivedAt: number): number {
    const ms = typeof at === "string" ? Date.parse(at) : NaN;
    if (!Number.isFinite(ms)) return NaN;
    if (ms < this.#notBefore || ms > receivedAt + this.#maxSkewMs) {
      this.#outOfRange++;
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
    const first = this.#workers.byId(this.#firstWorker[task] ?? 0);
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
