/**
 * What `deno task status` prints: a snapshot of a queue and its workers as a screen of text, each
 * worker followed by the tasks it runs and their latest progress.
 * @module
 */
import { STATUS_INTERVAL_MS } from "../core/events.ts";
import { printable } from "../core/text.ts";
import type { MonitorSnapshot } from "../observe/monitor.ts";
import { runningLines } from "./progress_text.ts";

/** Most worker rows printed; `--json` has them all. */
export const MAX_ROWS = 100;

/**
 * Renders a snapshot as a screen of text: the queue's counts, then a row per worker (at most
 * {@linkcode MAX_ROWS}) with the tasks it runs under it. Every name from an event is escaped.
 *
 * @example
 * ```ts
 * console.log(renderStatus(monitor.snapshot()));
 * ```
 */
export function renderStatus(snapshot: MonitorSnapshot): string {
  const lines = [
    `queue ${printable(snapshot.queue)}   ${snapshot.at}`,
    `  ready ${snapshot.ready}   unacked ${snapshot.unacked}   consumers ${snapshot.consumers}   ` +
    `dead-lettered ${snapshot.dead}   rate ${snapshot.ratePerSecond.toFixed(2)}/s (last minute)`,
    "",
  ];
  if (snapshot.workers.length === 0) {
    lines.push(
      `  no worker seen (workers report every ${STATUS_INTERVAL_MS / 1000} s)`,
    );
  } else {
    const shown = snapshot.workers.slice(0, MAX_ROWS).map((w) => ({
      ...w,
      name: truncate(printable(w.name), 40),
      node: w.node === undefined ? "" : truncate(printable(w.node), 30),
    }));
    const withNode = shown.some((w) => w.node !== "");
    let width = 6;
    let nodeWidth = 4;
    for (const w of shown) {
      width = Math.max(width, w.name.length);
      nodeWidth = Math.max(nodeWidth, w.node.length);
    }
    const at = Date.parse(snapshot.at);
    lines.push(
      `  ${"worker".padEnd(width)}  state    in hand  completed  failed  ` +
        `${withNode ? `${"node".padEnd(nodeWidth)}  ` : ""}last seen`,
    );
    for (const w of shown) {
      const ago = Math.max(0, Math.round((at - Date.parse(w.lastSeen)) / 1000));
      lines.push(
        `  ${w.name.padEnd(width)}  ${w.state.padEnd(7)}  ${String(w.inHand).padStart(7)}  ` +
          `${String(w.completed).padStart(9)}  ${String(w.failed).padStart(6)}  ` +
          `${withNode ? `${w.node.padEnd(nodeWidth)}  ` : ""}` +
          `${w.lastSeen}${w.state === "online" ? "" : ` (${ago} s ago)`}`,
      );
      // The tasks it runs, under it: `task #3 40%`.
      for (const line of runningLines(w.running)) lines.push(`      ${line}`);
    }
    if (snapshot.workers.length > shown.length) {
      lines.push(`  … and ${snapshot.workers.length - shown.length} more workers (see --json)`);
    }
  }
  if (snapshot.workersDropped > 0) {
    lines.push(
      `  (${snapshot.workersDropped} worker names seen least recently were dropped to bound ` +
        "memory)",
    );
  }
  return lines.join("\n");
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
