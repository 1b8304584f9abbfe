/**
 * What the terminal and SVG renderers of a timeline share: the headline, time formatting and
 * ticks, and the sampling of aggregated strips into display columns.
 * @module
 */
import { BAR_STATUSES, type BarStatus, type Timeline, type TimelineStrip } from "../timeline.ts";

/** `3 workers · 10 tasks · 12 attempts · 5s`. */
export function headline(timeline: Timeline): string {
  const attempts = BAR_STATUSES.reduce((sum, status) => sum + timeline.counts[status], 0);
  const spanMs = timeline.end.getTime() - timeline.start.getTime();
  return [
    plural(timeline.rows.length, "worker"),
    plural(timeline.tasks, "task"),
    plural(attempts, "attempt"),
    formatSeconds(spanMs, spanMs >= 10_000 ? 1000 : 10),
  ].join(" · ");
}

/**
 * What a drawing of `timeline` leaves out, one line each: workers without a row, events outside
 * the run's time window. Nothing when nothing was.
 */
export function leftOut(timeline: Timeline): string[] {
  const notes: string[] = [];
  if (timeline.workersNotShown > 0) {
    notes.push(`… and ${plural(timeline.workersNotShown, "more worker")} not drawn`);
  }
  if (timeline.untrackedEvents > 0) {
    notes.push(`${plural(timeline.untrackedEvents, "event")} of workers not tracked left out`);
  }
  if (timeline.outOfRange > 0) {
    notes.push(
      `${plural(timeline.outOfRange, "event")} stamped outside the run's time window left out`,
    );
  }
  return notes;
}

/** `1 task`, `2 tasks`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Formats milliseconds as seconds, to the precision `stepMs` needs: `2.5s`, `3s`. */
export function formatSeconds(ms: number, stepMs: number): string {
  const decimals = stepMs >= 1000 ? 0 : stepMs >= 100 ? 1 : stepMs >= 10 ? 2 : 3;
  return `${Number((ms / 1000).toFixed(decimals))}s`;
}

/** The smallest 1-2-5 step (in ms) whose ticks are at least `minGap` units apart. */
export function tickStep(spanMs: number, units: number, minGap: number): number {
  for (let magnitude = 1;; magnitude *= 10) {
    for (const factor of [1, 2, 5]) {
      const step = factor * magnitude;
      if ((step / spanMs) * units >= minGap || step >= spanMs) return step;
    }
  }
}

/** Attempts per status and in all, over the display columns of one row. */
export interface Columns {
  /** Per status, the attempts that ended in each column (fractions where a bucket straddles). */
  byStatus: Record<BarStatus, Float64Array>;
  /** The sum over statuses, per column. */
  totals: Float64Array;
}

/**
 * Spreads the buckets of a strip over `columns` equal columns from `startMs` to
 * `startMs + spanMs`, each bucket in proportion to its overlap with each column (so the counts
 * add up whether buckets are finer or coarser than columns). Buckets outside the span go to the
 * first or last column.
 */
export function stripColumns(
  strip: TimelineStrip,
  startMs: number,
  spanMs: number,
  columns: number,
): Columns {
  const byStatus = {} as Record<BarStatus, Float64Array>;
  for (const status of BAR_STATUSES) byStatus[status] = new Float64Array(columns);
  const totals = new Float64Array(columns);
  const stripStart = strip.start.getTime();
  const length = Math.min(...BAR_STATUSES.map((status) => strip.counts[status].length));
  const columnOf = (ms: number) =>
    Math.min(columns, Math.max(0, ((ms - startMs) / spanMs) * columns));
  for (let bucket = 0; bucket < length; bucket++) {
    let x0 = columnOf(stripStart + bucket * strip.bucketMs);
    let x1 = columnOf(stripStart + (bucket + 1) * strip.bucketMs);
    if (x1 - x0 < 1e-9) {
      x0 = Math.min(columns - 1, Math.floor(x0));
      x1 = x0 + 1;
    }
    for (const status of BAR_STATUSES) {
      const count = strip.counts[status][bucket] ?? 0;
      if (count === 0) continue;
      for (let column = Math.floor(x0); column < Math.min(columns, Math.ceil(x1)); column++) {
        const share = (count * (Math.min(x1, column + 1) - Math.max(x0, column))) / (x1 - x0);
        byStatus[status][column] = (byStatus[status][column] ?? 0) + share;
        totals[column] = (totals[column] ?? 0) + share;
      }
    }
  }
  return { byStatus, totals };
}
