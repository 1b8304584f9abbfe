/**
 * Prints a {@linkcode RunSummary} for a terminal. Worker names, task ids and reasons come from
 * events anyone can publish, so every one goes through `printable()`.
 * @module
 */
import type { RunSummary, TaskNote } from "../summary.ts";
import { printable } from "../../core/text.ts";

/** Options for {@linkcode renderSummary}. */
export interface RenderSummaryOptions {
  /**
   * Tasks listed of each kind (redelivered, duplicates, dead-lettered, missing) before
   * `… and N more`.
   * @default {20}
   */
  limit?: number;
  /**
   * Workers listed in the table (those that completed the most, in their order) before
   * `… and N more workers`.
   * @default {50}
   */
  workerLimit?: number;
}

/** Widest worker name shown in the table, in characters. */
const NAME_WIDTH = 32;

/**
 * Renders a summary as lines of text for a terminal: `N/M tasks completed`, how many tasks were
 * dead-lettered or are missing (when any), a table of workers (tasks, busy seconds), then the
 * notable tasks, each kind cut at `limit` with `… and N more`. No trailing newline.
 *
 * @example
 * ```ts
 * console.log(renderSummary(record.summary(), { limit: 10 }));
 * ```
 */
export function renderSummary(summary: RunSummary, options: RenderSummaryOptions = {}): string {
  const limit = Math.max(0, Math.floor(options.limit ?? 20));
  const lines = [`${summary.completed}/${summary.total} tasks completed`];
  if (summary.deadLettered > 0) lines.push(`${tasks(summary.deadLettered)} dead-lettered`);
  if (summary.missing > 0) {
    lines.push(`${tasks(summary.missing)} missing: neither completed nor dead-lettered`);
  }

  // Worker names come from events: forged ones must not make the table endless.
  const workerLimit = Math.max(0, Math.floor(options.workerLimit ?? 50));
  let workers = [...summary.workers];
  if (workers.length > workerLimit) {
    const busiest = new Set(
      [...workers].sort(([, a], [, b]) => b.completed - a.completed).slice(0, workerLimit),
    );
    workers = workers.filter((entry) => busiest.has(entry));
  }
  const names = workers.map(([name]) => cut(printable(name), NAME_WIDTH));
  const width = names.reduce((widest, name) => Math.max(widest, [...name].length), 6);
  lines.push(`  ${"worker".padEnd(width)}  tasks  busy`);
  workers.forEach(([, totals], index) => {
    const name = names[index] ?? "";
    lines.push(
      `  ${name}${" ".repeat(width - [...name].length)}  ${String(totals.completed).padStart(5)}` +
        `  ${(totals.busyMs / 1000).toFixed(1)} s`,
    );
  });
  const hidden = summary.workers.size - workers.length;
  if (hidden > 0) {
    let completed = 0;
    for (const totals of summary.workers.values()) completed += totals.completed;
    for (const [, totals] of workers) completed -= totals.completed;
    lines.push(`  … and ${hidden} more workers: ${tasks(completed)}`);
  }
  if (summary.untracked.completed > 0) {
    lines.push(`  … and workers not tracked one by one: ${tasks(summary.untracked.completed)}`);
  }

  const list = <T>(items: T[], omitted: number, what: string, line: (item: T) => string) => {
    for (const item of items.slice(0, limit)) lines.push(`  ${line(item)}`);
    const more = Math.max(0, items.length - limit) + omitted;
    if (more > 0) lines.push(`  … and ${more} more ${what}`);
  };
  list(
    summary.redelivered,
    summary.omitted.redelivered,
    "redelivered",
    (note) =>
      `${task(note)} completed by ${printable(note.worker)} on attempt ${note.attempt}` +
      (note.redelivered ? " (redelivered)" : " (retried)"),
  );
  list(
    summary.duplicates,
    summary.omitted.duplicates,
    "duplicates",
    (note) =>
      `${task(note)} completed again by ${printable(note.worker)} (duplicate)` +
      (note.firstWorker === undefined ? "" : `, first by ${printable(note.firstWorker)}`),
  );
  list(
    summary.dead,
    summary.omitted.dead,
    "dead-lettered",
    (note) => `${task(note)} dead-lettered: ${printable(note.reason ?? "unknown")}`,
  );
  list(
    summary.missingIds,
    summary.omitted.missingIds,
    "missing",
    (id) => `task ${printable(id)} missing`,
  );
  return lines.join("\n");
}

function task(note: TaskNote): string {
  return `task #${note.seq} ${printable(note.taskId)}`;
}

function tasks(count: number): string {
  return `${count} task${count === 1 ? "" : "s"}`;
}

function cut(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join("")}…`;
}
