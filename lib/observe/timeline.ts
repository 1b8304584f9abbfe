/**
 * The timeline of a run: which worker held which task attempt, and when. This module is its shape
 * only: a `RunRecord` (`run_record.ts`) builds it as events arrive, `buildTimeline` (`replay.ts`)
 * from an array of events, and the renderers in `render/timeline_text.ts` and
 * `render/timeline_svg.ts` draw it.
 *
 * A small run has one bar per attempt. A run of more attempts than the record keeps exactly is
 * {@linkcode Timeline.aggregated}: each worker has a {@linkcode TimelineStrip} of attempt counts
 * per status over equal time buckets instead.
 *
 * @example
 * ```ts
 * const timeline = buildTimeline(events, { killed: ["worker-b"] });
 * console.log(renderTimelineText(timeline, { width: 100, color: Deno.stdout.isTerminal() }));
 * await Deno.writeTextFile("timeline.svg", renderTimelineSvg(timeline, { title: "demo run" }));
 * ```
 * @module
 */

/**
 * How a task attempt ended: by its worker's `task.completed`, `task.failed` or `task.dead` event,
 * `interrupted` when the worker never ended it (killed, or the task was handed to another
 * delivery meanwhile), or `running` when nothing says it ended yet.
 */
export type BarStatus = "completed" | "failed" | "dead" | "interrupted" | "running";

/** Every {@linkcode BarStatus}, in the order legends list them. */
export const BAR_STATUSES: readonly BarStatus[] = [
  "completed",
  "failed",
  "dead",
  "interrupted",
  "running",
];

/** One task attempt on one worker, from its `task.started` to its end. */
export interface TimelineBar {
  /** The task's id. */
  taskId: string;
  /** The task's sequence number within its producer run. */
  seq: number;
  /** The attempt number from the events (1 for a first delivery). */
  attempt: number;
  /** The short label drawn on the bar: `#<seq>`. */
  label: string;
  /** When the attempt started (without a `task.started` event: its end minus `durationMs`). */
  start: Date;
  /** When the attempt ended; for `interrupted` and `running` bars see `buildTimeline`. */
  end: Date;
  /** `end - start`, in milliseconds. */
  durationMs: number;
  /** How the attempt ended. */
  status: BarStatus;
  /** Whether this attempt is not the first: attempt > 1, or the broker flagged a redelivery. */
  redelivered: boolean;
  /** The lane of its row the bar is drawn in: 0 unless the worker ran attempts concurrently. */
  lane: number;
  /** Why the attempt failed or the task was dead-lettered, from the end event. */
  reason?: string;
}

/**
 * One worker's attempts counted over equal time buckets, for a run too large to draw one bar per
 * attempt. Bucket `i` covers `[start + i * bucketMs, start + (i + 1) * bucketMs)`; an attempt
 * counts in the bucket of its end.
 */
export interface TimelineStrip {
  /** The start of the first bucket. */
  start: Date;
  /** The width of every bucket, in milliseconds. */
  bucketMs: number;
  /** Per status, the attempts that ended in each bucket (every array has the same length). */
  counts: Record<BarStatus, Uint32Array>;
}

/** One worker's attempts: bars in start order, or a strip of counts when aggregated. */
export interface TimelineRow {
  /** The worker's name. */
  worker: string;
  /** The worker's attempts, ordered by start (empty when the timeline is aggregated). */
  bars: TimelineBar[];
  /** How many lanes the bars need (more than 1 when the worker ran attempts concurrently). */
  lanes: number;
  /** The worker's attempts counted per time bucket, when the timeline is aggregated. */
  strip?: TimelineStrip;
  /** Whether the worker is listed in {@linkcode BuildTimelineOptions.killed}. */
  killed: boolean;
  /** The worker's first event. */
  firstSeen: Date;
  /** The worker's last event. */
  lastSeen: Date;
}

/** One row per worker plus the bounds and totals of the run. */
export interface Timeline {
  /** One row per worker, in order of the worker's first event. */
  rows: TimelineRow[];
  /** The first event (or the earliest bar start, if a bar was inferred from `durationMs`). */
  start: Date;
  /** The last event, or {@linkcode BuildTimelineOptions.now} if later. */
  end: Date;
  /** Distinct tasks with at least one attempt. */
  tasks: number;
  /** Attempts per status over all rows, exact even when the rows are aggregated. */
  counts: Record<BarStatus, number>;
  /** Whether the rows carry a {@linkcode TimelineStrip} each instead of one bar per attempt. */
  aggregated: boolean;
  /**
   * Workers with no row: past {@linkcode BuildTimelineOptions.maxRows} (the busiest are drawn),
   * or forgotten by the record (past its `maxWorkers`, never having reported a task).
   */
  workersNotShown: number;
  /** Events of workers the record did not track (past its `maxWorkers`): not drawn. */
  untrackedEvents: number;
  /**
   * Events left out because their time lies outside the run's window: before it started, or
   * later than when they were received, by more than the clocks may differ (a forged or
   * badly-set clock would otherwise stretch the timeline).
   */
  outOfRange: number;
}

/** Options for `buildTimeline` and `RunRecord.timeline`: the view. */
export interface BuildTimelineOptions {
  /**
   * Workers known to have been killed: their attempts without an end event are `interrupted`
   * even when no other delivery of the task was seen.
   * @default {[]}
   */
  killed?: readonly string[];
  /**
   * The time of the view: the end of the run if later than the last event, and the end of the
   * attempts still `running`.
   * @default {the time of the last event}
   */
  now?: Date;
  /**
   * Most rows drawn: the workers with the most attempts, in order of their first event.
   * @default {100}
   */
  maxRows?: number;
}
