/**
 * What a run did: how many of its tasks completed, were dead-lettered or are still missing, who
 * ran how many for how long, and the notable tasks (redelivered, completed twice,
 * dead-lettered). This module is its shape only: a `RunRecord` (`run_record.ts`) keeps it as events
 * arrive, `summarize` (`replay.ts`) makes it from an array of events, and `render/summary.ts`
 * prints it.
 * @module
 */
/** Per-worker totals. */
export interface WorkerTotals {
  /** Task completions by this worker (duplicates included). */
  completed: number;
  /** Time its handlers ran, summed over its completions, in ms. */
  busyMs: number;
}

/** A task worth naming in a summary, and the event that made it so. */
export interface TaskNote {
  /** The task's sequence number within its producer run. */
  seq: number;
  /** The task's id. */
  taskId: string;
  /** The worker of the event: who completed it, completed it again, or dead-lettered it. */
  worker: string;
  /** The attempt of the event. */
  attempt: number;
  /** Whether the broker flagged that delivery as a redelivery. */
  redelivered: boolean;
  /** Why the task was dead-lettered (dead-lettered tasks only). */
  reason?: string;
  /** The worker that completed the task first (duplicates only). */
  firstWorker?: string;
}

/** How many notes a {@linkcode RunSummary} list left out, past the record's `notableLimit`. */
export interface OmittedNotes {
  /** Redelivered or retried tasks not in {@linkcode RunSummary.redelivered}. */
  redelivered: number;
  /** Duplicate completions not in {@linkcode RunSummary.duplicates}. */
  duplicates: number;
  /** Dead-lettered tasks not in {@linkcode RunSummary.dead}. */
  dead: number;
  /** Missing tasks not in {@linkcode RunSummary.missingIds}. */
  missingIds: number;
}

/** The outcome of a run. */
export interface RunSummary {
  /** Tasks in the run. */
  total: number;
  /** Distinct tasks completed at least once. */
  completed: number;
  /** Distinct tasks dead-lettered by a worker (a task can be both completed and dead-lettered). */
  deadLettered: number;
  /** Tasks neither completed nor dead-lettered yet. */
  missing: number;
  /** The first tasks whose first completion came after an interrupted or failed attempt. */
  redelivered: TaskNote[];
  /** The first completions of tasks that had completed already (a crash before the ack). */
  duplicates: TaskNote[];
  /** The first dead-lettered tasks, with the reason. */
  dead: TaskNote[];
  /** The ids of the first missing tasks. */
  missingIds: string[];
  /** How many of each list were left out. */
  omitted: OmittedNotes;
  /** Totals per worker, in order of first completion. */
  workers: Map<string, WorkerTotals>;
  /**
   * The completions of workers the record did not track one by one (past its `maxWorkers`),
   * summed.
   */
  untracked: WorkerTotals;
}
