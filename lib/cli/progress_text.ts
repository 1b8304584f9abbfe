/**
 * Running tasks and their progress as terminal text, for `status` and `produce --wait`: a
 * fraction as a percentage (`40%`), an object as its short JSON. Everything shown comes from
 * events, so it goes through `printable()` and is clipped.
 * @module
 */
import type { Progress } from "../core/results.ts";
import { DEFAULT_NAME } from "../core/task.ts";
import { printable } from "../core/text.ts";
import type { RunningTask } from "../observe/running.ts";

/**
 * A progress value in a few characters: `40%` for a fraction (rounded down, so 100% means done),
 * the object's JSON otherwise, escaped and cut to `width` characters.
 *
 * @example
 * ```ts
 * progressText(0.4); // "40%"
 * progressText({ stage: "upload", done: 3 }); // '{"stage":"upload","done":3}'
 * ```
 */
export function progressText(value: Progress, width = 40): string {
  if (typeof value === "number") return `${Math.floor(value * 100)}%`;
  return clip(printable(JSON.stringify(value)), width);
}

/**
 * How a running task is named on a line: `#3` by its sequence number, else by the start of its
 * id, then its name unless it is the default one: `#3 resize`.
 */
export function taskLabel(task: RunningTask): string {
  const label = task.seq > 0 ? `#${task.seq}` : clip(printable(task.taskId), 13);
  return task.name === undefined || task.name === DEFAULT_NAME
    ? label
    : `${label} ${clip(printable(task.name), 30)}`;
}

/**
 * The lines `status` prints under a worker for the tasks it runs (`task #3 resize 40%`), at most
 * `max` of them, then how many more there are.
 */
export function runningLines(tasks: readonly RunningTask[], max = 3): string[] {
  const lines = tasks.slice(0, max).map((task) =>
    `task ${taskLabel(task)}${task.progress === undefined ? "" : ` ${progressText(task.progress)}`}`
  );
  if (tasks.length > max) lines.push(`… and ${tasks.length - max} more running`);
  return lines;
}

/**
 * The running tasks that reported progress, in one line of at most `width` characters for the
 * progress line of `produce --wait`: `running: #3 40%, #7 75% and 2 more`; empty when none did.
 */
export function runningSummary(tasks: readonly RunningTask[], width = 60): string {
  const reporting = tasks.filter((task) => task.progress !== undefined);
  if (reporting.length === 0) return "";
  let text = "running:";
  for (let i = 0; i < reporting.length; i++) {
    const task = reporting[i]!;
    const item = `${i === 0 ? " " : ", "}${taskLabel(task)} ${progressText(task.progress!, 24)}`;
    const rest = reporting.length - i - 1;
    const more = rest === 0 ? "" : ` and ${rest} more`;
    const left = reporting.length - i;
    // Room for this item and for saying how many follow; else say how many are left.
    if (text.length + item.length + more.length > width) {
      const tail = ` and ${left} more`;
      return i === 0 ? `running: ${left} reporting progress` : text + tail;
    }
    text += item;
  }
  return text;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
