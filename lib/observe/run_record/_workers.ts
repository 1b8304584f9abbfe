/**
 * The workers a run record tracks one by one, at most `maxWorkers` of them: a new name past that
 * makes the record forget the worker seen least recently that never reported a task, or, when
 * every worker tracked has, is not tracked.
 * @module
 */
import type { BarStatus } from "../timeline.ts";

/** A `task.started` not yet matched with its end event. */
export interface Open {
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
export interface Bar {
  taskId: string;
  seq: number;
  attempt: number;
  redelivered: boolean;
  startMs: number;
  endMs: number;
  status: BarStatus;
  reason: string | undefined;
}

/** What the record keeps of one worker it tracks. */
export interface WorkerState {
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

/** The workers tracked, by name and by id, and what was left out to stay within `maxWorkers`. */
export class WorkerRoster {
  readonly #maxWorkers: number;
  /** By name, in the order they were first tracked. */
  readonly #workers = new Map<string, WorkerState>();
  readonly #byId = new Map<number, WorkerState>();
  #nextId = 1;
  /** Workers that never reported a task, the one seen least recently first: forgotten first. */
  readonly #idle = new Set<WorkerState>();
  #forgotten = 0;
  #untrackedEvents = 0;

  /** Tracks at most `maxWorkers` workers (at least 1). */
  constructor(maxWorkers: number) {
    this.#maxWorkers = maxWorkers;
  }

  /**
   * The worker named `name`, tracked from now on if it was not; undefined when it cannot be (see
   * `RunRecordOptions.maxWorkers`). `task`: whether the event is a task's.
   */
  get(name: string, task: boolean): WorkerState | undefined {
    let worker = this.#workers.get(name);
    if (worker !== undefined) {
      if (this.#idle.delete(worker) && !task) this.#idle.add(worker); // now seen most recently
      return worker;
    }
    if (this.#workers.size >= this.#maxWorkers) {
      const forget = this.#idle.values().next().value;
      if (forget === undefined) {
        this.#untrackedEvents++;
        return undefined;
      }
      this.#idle.delete(forget);
      this.#workers.delete(forget.name);
      this.#byId.delete(forget.id);
      this.#forgotten++;
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

  /** Workers forgotten because more than `maxWorkers` were named (they never reported a task). */
  get forgotten(): number {
    return this.#forgotten;
  }

  /** Events of workers not tracked because `maxWorkers` workers had reported tasks already. */
  get untrackedEvents(): number {
    return this.#untrackedEvents;
  }

  /** The worker tracked with id `id` (0: none). */
  byId(id: number): WorkerState | undefined {
    return this.#byId.get(id);
  }

  /** Every worker tracked, in the order they were first tracked. */
  values(): MapIterator<WorkerState> {
    return this.#workers.values();
  }
}
