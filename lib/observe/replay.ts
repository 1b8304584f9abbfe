/**
 * A run's summary and timeline from an array of its events (a recorded run, or the events a view
 * keeps): the events fed to a {@linkcode RunRecord}, as `produce --wait` feeds it while they
 * arrive. The demo and the dashboard draw through here.
 *
 * @example
 * ```ts
 * console.log(renderSummary(summarize(events, taskIds)));
 * console.log(renderTimelineText(buildTimeline(events, { killed: ["worker-b"] })));
 * ```
 * @module
 */
import { EVENT_TYPES, type TareasEvent } from "../core/events.ts";
import { RunRecord, type RunRecordOptions } from "./run_record.ts";
import type { RunSummary } from "./summary.ts";
import type { BuildTimelineOptions, Timeline } from "./timeline.ts";

/**
 * Summarises the events of the tasks in `taskIds` (events of other tasks are ignored): a
 * {@linkcode RunRecord} fed with every event.
 *
 * @example
 * ```ts
 * console.log(renderSummary(summarize(events, new Set(tasks.map((task) => task.id)))));
 * ```
 */
export function summarize(
  events: Iterable<TareasEvent>,
  taskIds: Iterable<string>,
): RunSummary {
  const record = new RunRecord(taskIds);
  for (const event of events) record.record(event);
  return record.summary();
}

/**
 * Options of {@linkcode buildTimeline}: the view, and the bounds of the record it builds (see
 * {@linkcode RunRecordOptions}); events count as received at `now`.
 */
export interface BuildTimelineFromEventsOptions
  extends
    BuildTimelineOptions,
    Pick<RunRecordOptions, "exactAttempts" | "maxSkewMs" | "maxWorkers"> {
  /**
   * Events stamped more than `maxSkewMs` before this are left out.
   * @default {no bound}
   */
  startedAt?: number;
}

/**
 * Builds one row per worker from a run's events (in any order), with one bar per task attempt
 * (or, past the record's `exactAttempts`, a strip of counts per worker): the
 * events are sorted by time, then fed to a {@linkcode RunRecord}.
 *
 * An attempt is the span from a worker's `task.started` to that worker's `task.completed`,
 * `task.failed` or `task.dead` with the same task id and attempt. An end event with no start
 * gives a bar of `durationMs` before it. A start with no end is:
 *
 * - `interrupted` when its worker is in `options.killed`, or the same task started again later
 *   (on any worker), or a later attempt of the task was seen, or the worker went
 *   `worker.offline` after it. It ends at the earliest sensible time: the worker's last event if
 *   that came after the start (the worker was alive until then, so the kill came no earlier),
 *   capped by the next start of the same task (the broker had taken the task back by then); if
 *   the start is the worker's last sign of life, at that next start; with neither, at the end of
 *   the run.
 * - `running` otherwise (nothing says it ended): it ends at the end of the run.
 *
 * Events whose `at` does not parse, or lies more than `maxSkewMs` after `now` (or before
 * `startedAt`), are left out.
 *
 * @example
 * ```ts
 * const timeline = buildTimeline(recordedEvents, { killed: ["worker-b"] });
 * for (const row of timeline.rows) console.log(row.worker, row.bars.length);
 * ```
 */
export function buildTimeline(
  events: readonly TareasEvent[],
  options: BuildTimelineFromEventsOptions = {},
): Timeline {
  const sorted = events
    .map((event, index) => ({ event, index, ms: Date.parse(event.at) }))
    .sort((a, b) =>
      (a.ms || 0) - (b.ms || 0) || typeRank(a.event) - typeRank(b.event) || a.index - b.index
    );
  const record = new RunRecord(undefined, {
    startedAt: options.startedAt ?? -Infinity,
    ...(options.exactAttempts === undefined ? {} : { exactAttempts: options.exactAttempts }),
    ...(options.maxSkewMs === undefined ? {} : { maxSkewMs: options.maxSkewMs }),
    ...(options.maxWorkers === undefined ? {} : { maxWorkers: options.maxWorkers }),
  });
  const receivedAt = options.now?.getTime() ?? Date.now();
  for (const { event } of sorted) record.record(event, receivedAt);
  return record.timeline(options);
}

function typeRank(event: TareasEvent): number {
  return EVENT_TYPES.indexOf(event.type);
}
