/**
 * What a run did, from its events: who ran how many tasks for how long, which tasks were
 * redelivered, completed twice or dead-lettered.
 * @module
 */
import { isTaskEvent, type TareasEvent, type TaskEvent } from "./events.ts";

/** Per-worker totals. */
export interface WorkerTotals {
  /** Tasks this worker completed. */
  completed: number;
  /** Time its handlers ran, summed over completed tasks, in ms. */
  busyMs: number;
}

/** The outcome of a run. */
export interface RunSummary {
  /** Tasks in the run. */
  total: number;
  /** Distinct tasks completed at least once. */
  completed: number;
  /** Tasks dead-lettered by a worker, with the reason. */
  dead: TaskEvent[];
  /** Completions of tasks that had completed already (a crash between completion and ack). */
  duplicates: TaskEvent[];
  /** Completions that followed an interrupted or failed attempt. */
  redelivered: TaskEvent[];
  /** Totals per worker, in order of first completion. */
  workers: Map<string, WorkerTotals>;
}

/** Summarises the events of the tasks in `taskIds` (events of other tasks are ignored). */
export function summarize(
  events: readonly TareasEvent[],
  taskIds: ReadonlySet<string>,
): RunSummary {
  const done = new Set<string>();
  const summary: RunSummary = {
    total: taskIds.size,
    completed: 0,
    dead: [],
    duplicates: [],
    redelivered: [],
    workers: new Map(),
  };
  for (const event of events) {
    if (!isTaskEvent(event) || !taskIds.has(event.taskId)) continue;
    if (event.type === "task.dead") summary.dead.push(event);
    if (event.type !== "task.completed") continue;
    if (done.has(event.taskId)) summary.duplicates.push(event);
    done.add(event.taskId);
    if (event.attempt > 1) summary.redelivered.push(event);
    const totals = summary.workers.get(event.worker) ?? { completed: 0, busyMs: 0 };
    totals.completed++;
    totals.busyMs += event.durationMs ?? 0;
    summary.workers.set(event.worker, totals);
  }
  summary.completed = done.size;
  return summary;
}

/** Renders a summary as a few lines of text for a terminal. */
export function renderSummary(summary: RunSummary): string {
  const lines = [`${summary.completed}/${summary.total} tasks completed`];
  const width = Math.max(6, ...[...summary.workers.keys()].map((name) => name.length));
  lines.push(`  ${"worker".padEnd(width)}  tasks  busy`);
  for (const [name, totals] of summary.workers) {
    lines.push(
      `  ${name.padEnd(width)}  ${String(totals.completed).padStart(5)}  ${
        (totals.busyMs / 1000).toFixed(1)
      } s`,
    );
  }
  for (const event of summary.redelivered) {
    lines.push(
      `  task #${event.seq} ${event.taskId} completed by ${event.worker} on attempt ${event.attempt}` +
        (event.redelivered ? " (redelivered)" : " (retried)"),
    );
  }
  for (const event of summary.duplicates) {
    lines.push(
      `  task #${event.seq} ${event.taskId} completed again by ${event.worker} (duplicate)`,
    );
  }
  for (const event of summary.dead) {
    lines.push(`  task #${event.seq} ${event.taskId} dead-lettered: ${event.reason ?? "unknown"}`);
  }
  return lines.join("\n");
}
