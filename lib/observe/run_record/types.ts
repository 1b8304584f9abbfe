/**
 * The shapes a run record takes and gives: its options, what it knows of one task, how far the
 * run is, and what it left out to stay bounded.
 * @module
 */
/** Options for `RunRecord` (`../run_record.ts`). */
export interface RunRecordOptions {
  /**
   * Attempts (ended or not) the timeline keeps as exact bars; past this, every worker's attempts
   * are counted per status over time buckets instead (`Timeline.aggregated`).
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
   * `Timeline.outOfRange`). `-Infinity` for no lower bound (a record of past events).
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
   * `RunSummary.untracked`, and nothing of it is drawn.
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
