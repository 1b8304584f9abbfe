/**
 * The tasks being run right now, and the progress each last reported, as the task events tell:
 * a `task.started` or `task.progress` makes a task running (with its latest `progress`), its
 * `task.completed`, `task.failed` or `task.dead` ends it. What `status`, the dashboard and
 * `produce --wait` show of running tasks comes from here.
 *
 * Events of different types travel in different messages, so an attempt's last `task.progress`
 * may arrive after its end: the attempts that ended recently are remembered, and a late event of
 * one is ignored. The tasks tracked are capped (the events exchange takes anyone's events).
 * @module
 */
import type { TareasEvent, TaskEvent } from "../core/events.ts";

/**
 * One task being run.
 *
 * @example
 * ```ts
 * const shown = (task: RunningTask) => `task #${task.seq} ${task.progress ?? ""}`;
 * ```
 */
export interface RunningTask {
  /** The task's id. */
  taskId: string;
  /** Its sequence number within its producer run (0 when it has none). */
  seq: number;
  /** Its name, when its events give one. */
  name?: string;
  /** The attempt being run. */
  attempt: number;
  /** The worker running it. */
  worker: string;
  /** The latest progress it reported: a fraction from 0 to 1, or a small object. */
  progress?: number | Record<string, unknown>;
  /** When its attempt's first event was stamped, ISO 8601 (the worker's clock). */
  since: string;
}

/**
 * Options of {@linkcode RunningTasks}.
 *
 * @example
 * ```ts
 * const running = new RunningTasks({ maxTasks: 100 });
 * ```
 */
export interface RunningTasksOptions {
  /** Most tasks tracked; beyond, the one heard of least recently is dropped. @default {1000} */
  maxTasks?: number;
}

/** Attempts that ended remembered, to ignore their late events. */
const ENDED_KEPT = 1_000;

/**
 * The running tasks, fed with task events.
 *
 * @example
 * ```ts
 * const running = new RunningTasks();
 * for await (const update of watcher) if (update.kind === "event") running.observe(update.event);
 * console.log(running.tasks().map((task) => task.progress));
 * ```
 */
export class RunningTasks {
  /** By task id, the one heard of least recently first. */
  #tasks = new Map<string, RunningTask>();
  /** `taskId attempt` of attempts that ended, oldest first. */
  #ended = new Set<string>();
  #max: number;

  /** Tracks nothing yet. */
  constructor(options: RunningTasksOptions = {}) {
    this.#max = Math.max(1, Math.floor(options.maxTasks ?? 1000));
  }

  /** Takes in one event; events that are not about a task are ignored. */
  observe(event: TareasEvent): void {
    if (!event.type.startsWith("task.")) return;
    const { taskId, attempt, worker } = event as TaskEvent;
    if (typeof taskId !== "string" || typeof attempt !== "number") return;
    const key = `${taskId} ${attempt}`;
    if (event.type !== "task.started" && event.type !== "task.progress") {
      const known = this.#tasks.get(taskId);
      if (known !== undefined && known.attempt <= attempt) this.#tasks.delete(taskId);
      this.#ended.add(key);
      if (this.#ended.size > ENDED_KEPT) this.#ended.delete(this.#ended.values().next().value!);
      return;
    }
    if (this.#ended.has(key)) return; // a late event of an attempt that ended
    const known = this.#tasks.get(taskId);
    if (known !== undefined && known.attempt > attempt) return; // a late event of an older one
    const task: RunningTask = known?.attempt === attempt ? known : {
      taskId,
      seq: typeof event.seq === "number" ? event.seq : 0,
      attempt,
      worker,
      since: event.at,
    };
    const { name, progress } = event as TaskEvent;
    if (typeof name === "string") task.name = name;
    if (progress !== undefined) task.progress = progress;
    task.worker = worker;
    this.#tasks.delete(taskId); // re-inserted: the map stays ordered by last event
    this.#tasks.set(taskId, task);
    if (this.#tasks.size > this.#max) this.#tasks.delete(this.#tasks.keys().next().value!);
  }

  /**
   * Forgets the tasks of `worker` (it went offline), or only those whose last event was stamped
   * before `before` (ISO 8601, the worker's clock: it said it holds nothing since).
   */
  dropWorker(worker: string, before?: string): void {
    const cutoff = before === undefined ? Infinity : Date.parse(before);
    for (const [taskId, task] of this.#tasks) {
      if (task.worker === worker && !(Date.parse(task.since) >= cutoff)) {
        this.#tasks.delete(taskId);
      }
    }
  }

  /** How many tasks are running. */
  get size(): number {
    return this.#tasks.size;
  }

  /** The running tasks, ordered by `seq`, then by id. */
  tasks(): RunningTask[] {
    return [...this.#tasks.values()].map((task) => ({ ...task })).sort(bySeq);
  }

  /** The running tasks by worker, each worker's ordered by `seq`, then by id. */
  byWorker(): Map<string, RunningTask[]> {
    const workers = new Map<string, RunningTask[]>();
    for (const task of this.tasks()) {
      const tasks = workers.get(task.worker);
      if (tasks === undefined) workers.set(task.worker, [task]);
      else tasks.push(task);
    }
    return workers;
  }
}

function bySeq(a: RunningTask, b: RunningTask): number {
  return a.seq - b.seq || (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0);
}
