/**
 * Draws a {@linkcode Timeline} for a terminal: one row per worker, one bar per attempt, or a
 * dense strip per worker when the timeline is aggregated. Worker names, task ids and reasons
 * come from events anyone can publish, so everything shown goes through `printable()`.
 * @module
 */
import type { BarStatus, Timeline, TimelineBar, TimelineRow } from "../timeline.ts";
import { printable } from "../../core/text.ts";
import { formatSeconds, headline, leftOut, stripColumns, tickStep } from "./_timeline.ts";

/** Options for {@linkcode renderTimelineText}. */
export interface RenderTimelineTextOptions {
  /**
   * Total width in columns, worker names included (at least 40).
   * @default {80}
   */
  width?: number;
  /**
   * Whether to colour bars with ANSI escapes.
   * @default {false}
   */
  color?: boolean;
}

interface Cell {
  ch: string;
  style: string;
}

const TEXT_FILL: Record<BarStatus, string> = {
  completed: "█",
  failed: "▓",
  dead: "▒",
  interrupted: "░",
  running: "█",
};

/** ANSI SGR foreground and background codes per status. */
const ANSI: Record<BarStatus, { fg: string; bg: string }> = {
  completed: { fg: "32", bg: "42" },
  failed: { fg: "33", bg: "43" },
  dead: { fg: "31", bg: "41" },
  interrupted: { fg: "35", bg: "45" },
  running: { fg: "36", bg: "46" },
};

/** Heights of a column of an aggregated strip, from fewest attempts to most. */
const LEVELS = "▁▂▃▄▅▆▇█";

/**
 * Draws a timeline for a terminal: a summary line, a ruler of seconds, one row per worker
 * (several lines if it ran attempts concurrently) and a legend. Each bar is drawn with block
 * characters (`█` completed, `▓` failed, `▒` dead, `░` ending in `✗` interrupted, `█` ending
 * in `▸` running), starts with `↻` when it is not the task's first attempt, and carries its
 * `#seq` label inside when it fits (else just after it, if that space is free). Workers in
 * `killed` are suffixed `(killed)`. Worker names are escaped with `printable()`. The string has
 * no trailing newline.
 *
 * An aggregated timeline has one line per worker: each column's height (`▁` to `█`) is the
 * attempts that ended in it, relative to the busiest column of any worker; a column where most
 * attempts failed, were dead-lettered or interrupted shows `▓`, `▒` or `░` instead, and with
 * colour each column takes the colour of the worst status that is at least a tenth of it. The
 * legend says the bars are aggregated.
 *
 * @example
 * ```ts
 * console.log(renderTimelineText(buildTimeline(events), { width: Deno.consoleSize().columns }));
 * ```
 */
export function renderTimelineText(
  timeline: Timeline,
  options: RenderTimelineTextOptions = {},
): string {
  const width = Math.max(40, Math.floor(options.width ?? 80));
  const color = options.color ?? false;
  const paint = (text: string, style: string) =>
    color && style !== "" ? `\x1b[${style}m${text}\x1b[0m` : text;
  const layout = layOut(timeline, width);

  const lines = [headline(timeline)];
  if (timeline.rows.length === 0) {
    return [`${lines[0]}: no events`, ...leftOut(timeline)].join("\n");
  }
  lines.push(...ruler(layout, paint));
  const pen = { color, paint };
  const drawn = timeline.aggregated
    ? drawAggregatedRows(timeline, layout, pen)
    : drawBarRows(timeline, layout, pen);
  lines.push(...drawn.lines, ...wrapItems(drawn.legend, width, color), ...leftOut(timeline));
  return lines.join("\n");
}

/** Paints `text` in ANSI SGR `style`, or leaves it as it is without colour. */
type Paint = (text: string, style: string) => string;

/** How to draw: with colour or not, and the painter that follows from it. */
interface Pen {
  color: boolean;
  paint: Paint;
}

/** The lines of the workers' rows, and the items of the legend that goes under them. */
interface Drawn {
  lines: string[];
  legend: string[];
}

/** Where things go across the terminal: the names' column, then the chart. */
interface Layout {
  /** Each row's worker name, escaped, with ` (killed)` when it was. */
  names: string[];
  nameWidth: number;
  chartWidth: number;
  startMs: number;
  spanMs: number;
  /** Blank where a name would be. */
  indent: string;
}

/** Where things go when `timeline` is drawn `width` columns wide. */
function layOut(timeline: Timeline, width: number): Layout {
  const names = timeline.rows.map((row) =>
    printable(String(row.worker)) + (row.killed ? " (killed)" : "")
  );
  const nameWidth = Math.min(
    Math.floor(width / 3),
    names.reduce((widest, name) => Math.max(widest, [...name].length), 6),
  );
  const chartWidth = width - nameWidth - 1;
  const startMs = timeline.start.getTime();
  const spanMs = Math.max(1, timeline.end.getTime() - startMs);
  const indent = " ".repeat(nameWidth + 1);
  return { names, nameWidth, chartWidth, startMs, spanMs, indent };
}

/** The ruler: a line of tick labels in seconds, then a line of tick marks. */
function ruler({ chartWidth, spanMs, indent }: Layout, paint: Paint): string[] {
  const step = tickStep(spanMs, chartWidth, 8);
  const labelChars = Array<string>(chartWidth).fill(" ");
  const tickChars = Array<string>(chartWidth).fill("─");
  let labelsEnd = -1;
  for (let t = 0; t <= spanMs; t += step) {
    const col = Math.min(chartWidth - 1, Math.round((t / spanMs) * chartWidth));
    tickChars[col] = col === 0 ? "┌" : "┬";
    const label = formatSeconds(t, step);
    const at = Math.min(col, chartWidth - label.length);
    if (at > labelsEnd) {
      labelChars.splice(at, label.length, ...label);
      labelsEnd = at + label.length;
    }
  }
  return [indent + labelChars.join("").trimEnd(), indent + paint(tickChars.join(""), "2")];
}

/** One line per worker of an aggregated timeline, and the legend's items. */
function drawAggregatedRows(timeline: Timeline, layout: Layout, { paint }: Pen): Drawn {
  const { names, nameWidth, chartWidth, startMs, spanMs } = layout;
  const lines: string[] = [];
  const strips = drawStrips(timeline.rows, startMs, spanMs, chartWidth);
  timeline.rows.forEach((row, index) => {
    const name = paintName(truncate(names[index] ?? "", nameWidth), row.killed, nameWidth, paint);
    lines.push((name + renderCells(strips.rows[index] ?? [], paint)).trimEnd());
  });
  const counts = timeline.counts;
  const legend = [
    `${paint("█", ANSI.completed.fg)} completed ${counts.completed}`,
    `${paint("▓", ANSI.failed.fg)} failed ${counts.failed}`,
    `${paint("▒", ANSI.dead.fg)} dead ${counts.dead}`,
    `${paint("░", ANSI.interrupted.fg)} interrupted ${counts.interrupted}`,
    ...(counts.running > 0 ? [`${paint("▸", ANSI.running.fg)} running ${counts.running}`] : []),
    `bars aggregated: ${LEVELS} attempts ended per ` +
    `${formatSeconds(spanMs / chartWidth, spanMs / chartWidth / 10)} column`,
    `█ = ${Math.round(strips.max)}`,
    "▓▒░ most failed, dead or interrupted",
  ];
  return { lines, legend };
}

/** The lines of every worker of a timeline of bars (one per lane), and the legend's items. */
function drawBarRows(timeline: Timeline, layout: Layout, { color, paint }: Pen): Drawn {
  const { names, nameWidth, chartWidth, startMs, spanMs, indent } = layout;
  const lines: string[] = [];
  const colOf = (date: Date) => ((date.getTime() - startMs) / spanMs) * chartWidth;
  timeline.rows.forEach((row, index) => {
    const name = truncate(names[index] ?? "", nameWidth);
    for (let lane = 0; lane < row.lanes; lane++) {
      const cells = drawLane(row.bars.filter((bar) => bar.lane === lane), colOf, chartWidth, color);
      const prefix = lane === 0 ? paintName(name, row.killed, nameWidth, paint) : indent;
      lines.push((prefix + renderCells(cells, paint)).trimEnd());
    }
  });
  const counts = timeline.counts;
  const legend = [
    `${paint("█", ANSI.completed.fg)} completed ${counts.completed}`,
    `${paint("▓", ANSI.failed.fg)} failed ${counts.failed}`,
    `${paint("▒", ANSI.dead.fg)} dead ${counts.dead}`,
    `${paint("░✗", ANSI.interrupted.fg)} interrupted ${counts.interrupted}`,
    ...(counts.running > 0 ? [`${paint("█▸", ANSI.running.fg)} running ${counts.running}`] : []),
    "↻ attempt > 1",
    "#n task seq",
  ];
  return { lines, legend };
}

/** Cells of every row of an aggregated timeline, on one scale: the busiest column of any row. */
function drawStrips(
  rows: readonly TimelineRow[],
  startMs: number,
  spanMs: number,
  chartWidth: number,
): { rows: Cell[][]; max: number } {
  const columns = rows.map((row) =>
    row.strip === undefined ? undefined : stripColumns(row.strip, startMs, spanMs, chartWidth)
  );
  let max = 0;
  for (const row of columns) row?.totals.forEach((total) => max = Math.max(max, total));
  const cells = columns.map((row) => {
    const line: Cell[] = Array.from({ length: chartWidth }, () => ({ ch: " ", style: "" }));
    if (row === undefined || max === 0) return line;
    row.totals.forEach((total, column) => {
      if (total <= 1e-9) return;
      const count = (status: BarStatus) => row.byStatus[status][column] ?? 0;
      const worst = WORST_FIRST.find((status) => count(status) >= total / 10) ?? "completed";
      const notable = (["failed", "dead", "interrupted"] as const)
        .reduce((most, status) => count(status) > count(most) ? status : most, "failed");
      const troubled = count("failed") + count("dead") + count("interrupted");
      const level = Math.min(LEVELS.length, Math.max(1, Math.ceil((total / max) * LEVELS.length)));
      const ch = 2 * troubled >= total
        ? TEXT_FILL[notable]
        : 2 * count("running") >= total
        ? "▸"
        : LEVELS[level - 1] ?? "█";
      line[column] = { ch, style: ANSI[worst].fg };
    });
    return line;
  });
  return { rows: cells, max };
}

/** Statuses from the one a column's colour shows first (if a tenth of it) to the last. */
const WORST_FIRST: readonly BarStatus[] = ["dead", "interrupted", "failed", "running", "completed"];

function paintName(
  name: string,
  killed: boolean,
  nameWidth: number,
  paint: Paint,
): string {
  const padded = name + " ".repeat(nameWidth + 1 - [...name].length);
  if (!killed || !padded.includes(" (killed)")) return padded;
  return padded.replace(" (killed)", ` ${paint("(killed)", ANSI.dead.fg)}`);
}

function truncate(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join("")}…`;
}

function drawLane(
  bars: TimelineBar[],
  colOf: (date: Date) => number,
  chartWidth: number,
  color: boolean,
): Cell[] {
  const cells: Cell[] = Array.from({ length: chartWidth }, () => ({ ch: " ", style: "" }));
  const spans = bars.map((bar) => {
    const c0 = Math.min(chartWidth - 1, Math.max(0, Math.round(colOf(bar.start))));
    const c1 = Math.min(chartWidth, Math.max(c0 + 1, Math.round(colOf(bar.end))));
    return { bar, c0, c1 };
  });
  // Leave one blank cell between bars that touch, so back-to-back attempts stay apart.
  spans.forEach((span, i) => {
    const next = spans[i + 1];
    if (next !== undefined && next.c0 <= span.c1 && next.c0 - 1 - span.c0 >= 2) {
      span.c1 = next.c0 - 1;
    }
  });

  const unlabelled: typeof spans = [];
  for (const span of spans) {
    const { bar, c0, c1 } = span;
    const style = ANSI[bar.status].fg;
    for (let c = c0; c < c1; c++) cells[c] = { ch: TEXT_FILL[bar.status], style };
    const capped = bar.status === "interrupted" || bar.status === "running";
    if (bar.redelivered) cells[c0] = { ch: "↻", style };
    if (capped) cells[c1 - 1] = { ch: bar.status === "interrupted" ? "✗" : "▸", style };
    const from = c0 + (bar.redelivered && c1 - c0 > 1 ? 1 : 0);
    const to = c1 - (capped && c1 - c0 > 1 ? 1 : 0);
    if (to - from >= bar.label.length) {
      const at = from + Math.floor((to - from - bar.label.length) / 2);
      const labelStyle = color ? `30;${ANSI[bar.status].bg}` : "";
      [...bar.label].forEach((ch, k) => cells[at + k] = { ch, style: labelStyle });
    } else {
      unlabelled.push(span);
    }
  }
  // Labels that do not fit inside go just after their bar, where that space is free.
  for (const { bar, c1 } of unlabelled) {
    const end = c1 + bar.label.length;
    const free = end <= chartWidth &&
      cells.slice(c1, Math.min(chartWidth, end + 1)).every((cell) => cell.ch === " ");
    if (free) {
      [...bar.label].forEach((ch, k) => cells[c1 + k] = { ch, style: ANSI[bar.status].fg });
    }
  }
  return cells;
}

function renderCells(cells: Cell[], paint: Paint): string {
  let out = "";
  let run = "";
  let style = "";
  for (const cell of cells) {
    if (cell.style !== style) {
      out += paint(run, style);
      run = "";
      style = cell.style;
    }
    run += cell.ch;
  }
  return out + paint(run, style);
}

function wrapItems(items: string[], width: number, color: boolean): string[] {
  // deno-lint-ignore no-control-regex
  const visible = (text: string) => [...(color ? text.replace(/\x1b\[[0-9;]*m/g, "") : text)];
  const lines: string[] = [];
  let line = "";
  for (const item of items) {
    const candidate = line === "" ? item : `${line}  ${item}`;
    if (line !== "" && visible(candidate).length > width) {
      lines.push(line);
      line = item;
    } else {
      line = candidate;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}
