/**
 * Per-worker timelines of a run: which worker held which task attempt, and when. Built from the
 * events workers publish (see `events.ts`) and drawn for a terminal or as a standalone SVG document.
 *
 * @example
 * ```ts
 * const timeline = buildTimeline(events, { killed: ["worker-b"] });
 * console.log(renderTimelineText(timeline, { width: 100, color: Deno.stdout.isTerminal() }));
 * await Deno.writeTextFile("timeline.svg", renderTimelineSvg(timeline, { title: "demo run" }));
 * ```
 * @module
 */

import { EVENT_TYPES, isTaskEvent, type TareasEvent, type TaskEvent } from "./events.ts";

/**
 * How a task attempt ended: by its worker's `task.completed`, `task.failed` or `task.dead` event,
 * `interrupted` when the worker never ended it (killed, or the task was handed to another
 * delivery meanwhile), or `running` when nothing says it ended yet.
 */
export type BarStatus = "completed" | "failed" | "dead" | "interrupted" | "running";

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
  /** When the attempt ended; for `interrupted` and `running` bars see {@linkcode buildTimeline}. */
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

/** One worker's attempts, in start order. */
export interface TimelineRow {
  /** The worker's name. */
  worker: string;
  /** The worker's attempts, ordered by start. */
  bars: TimelineBar[];
  /** How many lanes the bars need (more than 1 when the worker ran attempts concurrently). */
  lanes: number;
  /** Whether the worker is listed in {@linkcode BuildTimelineOptions.killed}. */
  killed: boolean;
  /** The worker's first event. */
  firstSeen: Date;
  /** The worker's last event. */
  lastSeen: Date;
}

/** What {@linkcode buildTimeline} returns: one row per worker plus the bounds of the run. */
export interface Timeline {
  /** One row per worker, in order of the worker's first event. */
  rows: TimelineRow[];
  /** The first event (or the earliest bar start, if a bar was inferred from `durationMs`). */
  start: Date;
  /** The last event, or {@linkcode BuildTimelineOptions.now} if later. */
  end: Date;
}

/** Options for {@linkcode buildTimeline}. */
export interface BuildTimelineOptions {
  /**
   * Workers known to have been killed: their attempts without an end event are `interrupted`
   * even when no other delivery of the task was seen.
   * @default {[]}
   */
  killed?: string[];
  /**
   * The time of the view: the end of the run if later than the last event, and the end of the
   * attempts still `running`.
   * @default {the time of the last event}
   */
  now?: Date;
}

const END_STATUS = {
  "task.completed": "completed",
  "task.failed": "failed",
  "task.dead": "dead",
} as const satisfies Record<string, BarStatus>;

interface OpenAttempt {
  event: TaskEvent;
  ms: number;
}

interface RowDraft {
  worker: string;
  bars: TimelineBar[];
  open: OpenAttempt[];
  firstMs: number;
  lastMs: number;
  offlineMs: number | undefined;
}

/**
 * Builds one row per worker from a run's events (in any order), with one bar per task attempt.
 *
 * An attempt is the span from a worker's `task.started` to that worker's `task.completed`,
 * `task.failed` or `task.dead` with the same task id and attempt. An end event with no start
 * gives a bar of `durationMs` before it. A start with no end is:
 *
 * - `interrupted` when its worker is in `options.killed`, or the same task started again later
 *   (on any worker), or the worker went `worker.offline` after it. It ends at the earliest
 *   sensible time: the worker's last event if that came after the start (the worker was alive
 *   until then, so the kill came no earlier), capped by the next start of the same task (the
 *   broker had taken the task back by then); if the start is the worker's last sign of life,
 *   at that next start; with neither, at the end of the run.
 * - `running` otherwise (nothing says it ended): it ends at the end of the run.
 *
 * Events whose `at` does not parse are skipped.
 *
 * @example
 * ```ts
 * const timeline = buildTimeline(recordedEvents, { killed: ["worker-b"] });
 * for (const row of timeline.rows) console.log(row.worker, row.bars.length);
 * ```
 */
export function buildTimeline(
  events: TareasEvent[],
  options: BuildTimelineOptions = {},
): Timeline {
  const killed = new Set(options.killed ?? []);
  const sorted = events
    .map((event, index) => ({ event, index, ms: Date.parse(event.at) }))
    .filter((entry) => Number.isFinite(entry.ms))
    .sort((a, b) => a.ms - b.ms || typeRank(a.event) - typeRank(b.event) || a.index - b.index);

  const drafts = new Map<string, RowDraft>();
  const startsByTask = new Map<string, number[]>();
  for (const { event, ms } of sorted) {
    let row = drafts.get(event.worker);
    if (row === undefined) {
      row = {
        worker: event.worker,
        bars: [],
        open: [],
        firstMs: ms,
        lastMs: ms,
        offlineMs: undefined,
      };
      drafts.set(event.worker, row);
    }
    row.lastMs = ms;
    if (!isTaskEvent(event)) {
      if (event.type === "worker.offline") row.offlineMs = ms;
      continue;
    }
    if (event.type === "task.started") {
      row.open.push({ event, ms });
      const starts = startsByTask.get(event.taskId) ?? [];
      starts.push(ms);
      startsByTask.set(event.taskId, starts);
      continue;
    }
    const index = row.open.findIndex((open) =>
      open.event.taskId === event.taskId && open.event.attempt === event.attempt
    );
    const opened = index === -1 ? undefined : row.open.splice(index, 1)[0];
    const startMs = opened?.ms ?? ms - Math.max(0, event.durationMs ?? 0);
    row.bars.push(
      makeBar(opened?.event ?? event, startMs, ms, END_STATUS[event.type], event.reason),
    );
  }

  const allBars = [...drafts.values()].flatMap((row) => row.bars);
  const firstMs = sorted[0]?.ms ?? options.now?.getTime() ?? 0;
  const startMs = Math.min(firstMs, ...allBars.map((bar) => bar.start.getTime()));
  const endMs = Math.max(sorted.at(-1)?.ms ?? firstMs, options.now?.getTime() ?? -Infinity);

  const rows: TimelineRow[] = [];
  for (const draft of drafts.values()) {
    const isKilled = killed.has(draft.worker);
    for (const open of draft.open) {
      const nextStart = startsByTask.get(open.event.taskId)?.find((ms) => ms > open.ms);
      const wentOffline = draft.offlineMs !== undefined && draft.offlineMs >= open.ms;
      if (!isKilled && nextStart === undefined && !wentOffline) {
        draft.bars.push(makeBar(open.event, open.ms, endMs, "running", undefined));
        continue;
      }
      const aliveUntil = draft.lastMs > open.ms ? draft.lastMs : undefined;
      const candidates = [aliveUntil, nextStart].filter((ms) => ms !== undefined);
      const end = candidates.length > 0 ? Math.min(...candidates) : endMs;
      draft.bars.push(makeBar(open.event, open.ms, end, "interrupted", undefined));
    }
    draft.bars.sort((a, b) =>
      a.start.getTime() - b.start.getTime() || a.end.getTime() - b.end.getTime()
    );
    rows.push({
      worker: draft.worker,
      bars: draft.bars,
      lanes: assignLanes(draft.bars),
      killed: isKilled,
      firstSeen: new Date(draft.firstMs),
      lastSeen: new Date(draft.lastMs),
    });
  }
  return { rows, start: new Date(startMs), end: new Date(endMs) };
}

function typeRank(event: TareasEvent): number {
  return EVENT_TYPES.indexOf(event.type);
}

function makeBar(
  event: TaskEvent,
  startMs: number,
  endMs: number,
  status: BarStatus,
  reason: string | undefined,
): TimelineBar {
  const bar: TimelineBar = {
    taskId: event.taskId,
    seq: event.seq,
    attempt: event.attempt,
    label: `#${event.seq}`,
    start: new Date(startMs),
    end: new Date(Math.max(startMs, endMs)),
    durationMs: Math.max(0, endMs - startMs),
    status,
    redelivered: event.attempt > 1 || event.redelivered,
    lane: 0,
  };
  if (reason !== undefined) bar.reason = reason;
  return bar;
}

/** Puts each bar (sorted by start) in the first lane free at its start; returns the lane count. */
function assignLanes(bars: TimelineBar[]): number {
  const laneEnds: number[] = [];
  for (const bar of bars) {
    const start = bar.start.getTime();
    let lane = laneEnds.findIndex((end) => end <= start);
    if (lane === -1) lane = laneEnds.length;
    laneEnds[lane] = bar.end.getTime();
    bar.lane = lane;
  }
  return Math.max(1, laneEnds.length);
}

// ---------------------------------------------------------------------------------------------
// Shared by both renderers

const STATUSES: readonly BarStatus[] = ["completed", "failed", "dead", "interrupted", "running"];

function countStatuses(timeline: Timeline): Record<BarStatus, number> {
  const counts = { completed: 0, failed: 0, dead: 0, interrupted: 0, running: 0 };
  for (const row of timeline.rows) {
    for (const bar of row.bars) counts[bar.status]++;
  }
  return counts;
}

function summary(timeline: Timeline): string {
  const bars = timeline.rows.flatMap((row) => row.bars);
  const tasks = new Set(bars.map((bar) => bar.taskId)).size;
  const spanMs = timeline.end.getTime() - timeline.start.getTime();
  return [
    plural(timeline.rows.length, "worker"),
    plural(tasks, "task"),
    plural(bars.length, "attempt"),
    formatSeconds(spanMs, spanMs >= 10_000 ? 1000 : 10),
  ].join(" · ");
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** Formats milliseconds as seconds, to the precision `stepMs` needs: `2.5s`, `3s`. */
function formatSeconds(ms: number, stepMs: number): string {
  const decimals = stepMs >= 1000 ? 0 : stepMs >= 100 ? 1 : stepMs >= 10 ? 2 : 3;
  return `${Number((ms / 1000).toFixed(decimals))}s`;
}

/** The smallest 1-2-5 step (in ms) whose ticks are at least `minGap` units apart. */
function tickStep(spanMs: number, units: number, minGap: number): number {
  for (let magnitude = 1;; magnitude *= 10) {
    for (const factor of [1, 2, 5]) {
      const step = factor * magnitude;
      if ((step / spanMs) * units >= minGap || step >= spanMs) return step;
    }
  }
}

/** Replaces control characters, which could drive a terminal or break XML, with `?`. */
function withoutControls(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.toWellFormed().replace(/[\u0000-\u001f\u007f-\u009f\ufffe\uffff]/g, "?");
}

// ---------------------------------------------------------------------------------------------
// Text

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

/**
 * Draws a timeline for a terminal: a summary line, a ruler of seconds, one row per worker
 * (several lines if it ran attempts concurrently) and a legend. Each bar is drawn with block
 * characters (`█` completed, `▓` failed, `▒` dead, `░` ending in `✗` interrupted, `█` ending
 * in `▸` running), starts with `↻` when it is not the task's first attempt, and carries its
 * `#seq` label inside when it fits (else just after it, if that space is free). Workers in
 * `killed` are suffixed `(killed)`. The string has no trailing newline.
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

  const names = timeline.rows.map((row) =>
    withoutControls(row.worker) + (row.killed ? " (killed)" : "")
  );
  const nameWidth = Math.min(
    Math.floor(width / 3),
    Math.max(6, ...names.map((name) => [...name].length)),
  );
  const chartWidth = width - nameWidth - 1;
  const startMs = timeline.start.getTime();
  const spanMs = Math.max(1, timeline.end.getTime() - startMs);
  const colOf = (date: Date) => ((date.getTime() - startMs) / spanMs) * chartWidth;
  const indent = " ".repeat(nameWidth + 1);

  const lines = [summary(timeline)];
  if (timeline.rows.length === 0) return `${lines[0]}: no events`;

  // Ruler: tick labels, then tick marks.
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
  lines.push(indent + labelChars.join("").trimEnd());
  lines.push(indent + paint(tickChars.join(""), "2"));

  timeline.rows.forEach((row, index) => {
    const name = truncate(names[index] ?? "", nameWidth);
    for (let lane = 0; lane < row.lanes; lane++) {
      const cells = drawLane(row.bars.filter((bar) => bar.lane === lane), colOf, chartWidth, color);
      const prefix = lane === 0 ? paintName(name, row.killed, nameWidth, paint) : indent;
      lines.push((prefix + renderCells(cells, paint)).trimEnd());
    }
  });

  const counts = countStatuses(timeline);
  const legend = [
    `${paint("█", ANSI.completed.fg)} completed ${counts.completed}`,
    `${paint("▓", ANSI.failed.fg)} failed ${counts.failed}`,
    `${paint("▒", ANSI.dead.fg)} dead ${counts.dead}`,
    `${paint("░✗", ANSI.interrupted.fg)} interrupted ${counts.interrupted}`,
    ...(counts.running > 0 ? [`${paint("█▸", ANSI.running.fg)} running ${counts.running}`] : []),
    "↻ attempt > 1",
    "#n task seq",
  ];
  lines.push(...wrapItems(legend, width, color));
  return lines.join("\n");
}

function paintName(
  name: string,
  killed: boolean,
  nameWidth: number,
  paint: (text: string, style: string) => string,
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

function renderCells(cells: Cell[], paint: (text: string, style: string) => string): string {
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

// ---------------------------------------------------------------------------------------------
// SVG

/** Options for {@linkcode renderTimelineSvg}. */
export interface RenderTimelineSvgOptions {
  /**
   * Width of the drawing in pixels (at least 320); the height follows from the rows.
   * @default {960}
   */
  width?: number;
  /**
   * Title drawn at the top and given as the document's `<title>`.
   * @default {"tareas timeline"}
   */
  title?: string;
}

interface SvgStyle {
  fill: string;
  stroke: string;
  text: string;
}

const SVG_STYLE: Record<BarStatus, SvgStyle> = {
  completed: { fill: "#43a047", stroke: "#2e7d32", text: "#ffffff" },
  failed: { fill: "#ffb74d", stroke: "#ef6c00", text: "#4e2600" },
  dead: { fill: "#6a1b9a", stroke: "#4a148c", text: "#ffffff" },
  interrupted: { fill: "url(#tareas-hatch)", stroke: "#c62828", text: "#7f0000" },
  running: { fill: "#64b5f6", stroke: "#1565c0", text: "#0d2b4d" },
};

const FONT = "ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', 'Liberation Mono', monospace";
const CHAR_WIDTH = 7.2; // an estimate of a 12px monospace character
const LANE_HEIGHT = 24;
const BAR_HEIGHT = 16;
const ROW_PADDING = 6;

/**
 * Draws a timeline as a standalone SVG document: a title and summary, a time axis in seconds
 * with grid lines, one `<g class="worker">` per worker (its name, a grey line from its first to
 * its last event, one `<rect>` per attempt with a `<title>` tooltip and a `#seq` label), dashed
 * arrows from each interrupted or failed attempt to the task's next attempt, and a legend.
 * Interrupted attempts are hatched red with a dashed border and a cross at their end.
 * All text is escaped; there are no scripts or external resources.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("run.svg", renderTimelineSvg(buildTimeline(events), { title: "run" }));
 * ```
 */
export function renderTimelineSvg(
  timeline: Timeline,
  options: RenderTimelineSvgOptions = {},
): string {
  const width = Math.max(320, Math.round(options.width ?? 960));
  const title = options.title ?? "tareas timeline";
  const longestName = Math.max(
    4,
    ...timeline.rows.map((row) => [...row.worker].length + (row.killed ? 9 : 0)),
  );
  const nameWidth = Math.min(260, Math.max(80, longestName * CHAR_WIDTH + 12));
  const chartLeft = 16 + nameWidth;
  const chartWidth = width - chartLeft - 28;
  const startMs = timeline.start.getTime();
  const spanMs = Math.max(1, timeline.end.getTime() - startMs);
  const xOf = (date: Date) => chartLeft + ((date.getTime() - startMs) / spanMs) * chartWidth;

  const axisTop = 78;
  const rowsTop = axisTop + 8;
  const rowTops: number[] = [];
  let y = rowsTop;
  for (const row of timeline.rows) {
    rowTops.push(y);
    y += row.lanes * LANE_HEIGHT + 2 * ROW_PADDING;
  }
  const rowsBottom = y;
  const legendTop = rowsBottom + 22;
  const legend = svgLegend(timeline, width, legendTop);
  const height = legend.bottom + 14;

  const out: string[] = [];
  out.push(
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="12" role="img" ` +
      `aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<defs>`,
    `<pattern id="tareas-hatch" patternUnits="userSpaceOnUse" width="6" height="6" ` +
      `patternTransform="rotate(45)"><rect width="6" height="6" fill="#fde4e4"/>` +
      `<line x1="0" y1="0" x2="0" y2="6" stroke="#e57373" stroke-width="3"/></pattern>`,
    ...(["interrupted", "failed"] as const).map((status) =>
      `<marker id="tareas-arrow-${status}" viewBox="0 0 8 8" refX="7" refY="4" ` +
      `markerWidth="7" markerHeight="7" orient="auto-start-reverse">` +
      `<path d="M0,0 L8,4 L0,8 z" fill="${SVG_STYLE[status].stroke}"/></marker>`
    ),
    `</defs>`,
    `<rect class="background" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="16" y="26" font-size="16" font-weight="bold" fill="#212121">` +
      `${escapeXml(title)}</text>`,
    `<text class="summary" x="16" y="45" fill="#616161">${escapeXml(summary(timeline))} · ` +
      `from ${escapeXml(timeline.start.toISOString())}</text>`,
  );

  // Row stripes, then the axis and its grid, then the rows on top.
  out.push(`<g class="stripes">`);
  timeline.rows.forEach((_, index) => {
    if (index % 2 === 1) return;
    const top = rowTops[index] ?? 0;
    const bottom = rowTops[index + 1] ?? rowsBottom;
    out.push(
      `<rect x="8" y="${top}" width="${width - 16}" height="${bottom - top}" fill="#f5f5f5"/>`,
    );
  });
  out.push(`</g>`);

  const step = tickStep(spanMs, chartWidth, 64);
  out.push(`<g class="axis" fill="#616161" text-anchor="middle">`);
  for (let t = 0; t <= spanMs; t += step) {
    const x = num(chartLeft + (t / spanMs) * chartWidth);
    out.push(
      `<line x1="${x}" y1="${axisTop}" x2="${x}" y2="${rowsBottom}" stroke="#e0e0e0"/>`,
      `<text x="${x}" y="${axisTop - 6}">${formatSeconds(t, step)}</text>`,
    );
  }
  out.push(
    `<line x1="${chartLeft}" y1="${axisTop}" x2="${num(chartLeft + chartWidth)}" ` +
      `y2="${axisTop}" stroke="#9e9e9e"/>`,
    `</g>`,
  );

  const centreOf = new Map<TimelineBar, { x0: number; x1: number; y: number }>();
  timeline.rows.forEach((row, index) => {
    const top = (rowTops[index] ?? 0) + ROW_PADDING;
    const nameY = num(top + LANE_HEIGHT / 2 + 4);
    out.push(`<g class="worker" data-worker="${escapeXml(row.worker)}">`);
    out.push(
      `<text class="name" x="16" y="${nameY}" fill="#212121">${escapeXml(row.worker)}` +
        (row.killed ? `<tspan dx="7" fill="#c62828">killed</tspan>` : "") + `</text>`,
    );
    const lifeY = num(top + LANE_HEIGHT / 2);
    out.push(
      `<line class="alive" x1="${num(xOf(row.firstSeen))}" y1="${lifeY}" ` +
        `x2="${num(xOf(row.lastSeen))}" y2="${lifeY}" stroke="#bdbdbd" stroke-width="2"/>`,
    );
    for (const bar of row.bars) {
      const x0 = xOf(bar.start);
      // 1px short of the end, so back-to-back attempts stay apart.
      const barWidth = Math.max(2, xOf(bar.end) - x0 - 1);
      const barTop = top + bar.lane * LANE_HEIGHT + (LANE_HEIGHT - BAR_HEIGHT) / 2;
      centreOf.set(bar, { x0, x1: x0 + barWidth, y: barTop + BAR_HEIGHT / 2 });
      out.push(svgBar(bar, row.worker, x0, barTop, barWidth));
    }
    out.push(`</g>`);
  });

  out.push(...svgLinks(timeline, centreOf));
  out.push(...legend.elements, `</svg>`);
  return out.join("\n") + "\n";
}

function svgBar(bar: TimelineBar, worker: string, x: number, top: number, w: number): string {
  const style = SVG_STYLE[bar.status];
  const tooltip = [
    `${bar.label} task ${bar.taskId}`,
    `attempt ${bar.attempt}${bar.redelivered ? " (redelivered)" : ""}`,
    `${bar.status} after ${formatSeconds(bar.durationMs, 1)}`,
    `worker ${worker}`,
    ...(bar.reason === undefined ? [] : [`reason: ${bar.reason}`]),
  ].join("\n");
  const dashed = bar.status === "interrupted" ? ` stroke-dasharray="4 2"` : "";
  const parts = [
    `<g class="bar ${bar.status}${bar.redelivered ? " redelivered" : ""}" ` +
    `data-task="${escapeXml(bar.taskId)}" data-attempt="${bar.attempt}">`,
    `<rect x="${num(x)}" y="${num(top)}" width="${num(w)}" height="${BAR_HEIGHT}" rx="3" ` +
    `fill="${style.fill}" stroke="${style.stroke}" stroke-width="1.5"${dashed}>` +
    `<title>${escapeXml(tooltip)}</title></rect>`,
  ];
  const label = (bar.redelivered ? "↻ " : "") + bar.label;
  const labelWidth = [...label].length * 6.6 + 8;
  const room = w - (bar.status === "interrupted" ? 8 : 0);
  if (labelWidth <= room) {
    parts.push(
      `<text x="${num(x + room / 2)}" y="${num(top + BAR_HEIGHT / 2 + 4)}" ` +
        `text-anchor="middle" font-size="11" font-weight="bold" fill="${style.text}" ` +
        `pointer-events="none">${escapeXml(label)}</text>`,
    );
  }
  if (bar.status === "interrupted") {
    const cx = x + w;
    const cy = top + BAR_HEIGHT / 2;
    const d = `M${num(cx - 5)},${num(cy - 5)} L${num(cx + 5)},${num(cy + 5)} ` +
      `M${num(cx + 5)},${num(cy - 5)} L${num(cx - 5)},${num(cy + 5)}`;
    parts.push(
      `<path class="cross" d="${d}" stroke="#ffffff" stroke-width="5" stroke-linecap="round"/>`,
      `<path class="cross" d="${d}" stroke="#c62828" stroke-width="2.5" ` +
        `stroke-linecap="round"/>`,
    );
  }
  parts.push(`</g>`);
  return parts.join("");
}

/** Dashed arrows from every interrupted or failed attempt to the task's next attempt. */
function svgLinks(
  timeline: Timeline,
  centreOf: Map<TimelineBar, { x0: number; x1: number; y: number }>,
): string[] {
  const byTask = new Map<string, TimelineBar[]>();
  for (const row of timeline.rows) {
    for (const bar of row.bars) byTask.set(bar.taskId, [...(byTask.get(bar.taskId) ?? []), bar]);
  }
  const out = [`<g class="links" fill="none" stroke-width="1.5" stroke-dasharray="5 3">`];
  for (const bars of byTask.values()) {
    bars.sort((a, b) => a.start.getTime() - b.start.getTime() || a.attempt - b.attempt);
    bars.forEach((bar, i) => {
      const next = bars[i + 1];
      if (next === undefined || (bar.status !== "interrupted" && bar.status !== "failed")) return;
      const from = centreOf.get(bar);
      const to = centreOf.get(next);
      if (from === undefined || to === undefined) return;
      const bend = Math.max(12, Math.min(40, Math.abs(to.x0 - from.x1) / 2));
      const status = bar.status;
      out.push(
        `<path class="link ${status}" d="M${num(from.x1)},${num(from.y)} ` +
          `C${num(from.x1 + bend)},${num(from.y)} ${num(to.x0 - bend)},${num(to.y)} ` +
          `${num(to.x0)},${num(to.y)}" stroke="${SVG_STYLE[status].stroke}" ` +
          `marker-end="url(#tareas-arrow-${status})"/>`,
      );
    });
  }
  out.push(`</g>`);
  return out;
}

function svgLegend(
  timeline: Timeline,
  width: number,
  top: number,
): { elements: string[]; bottom: number } {
  const counts = countStatuses(timeline);
  const elements = [`<g class="legend" fill="#424242">`];
  let x = 16;
  let y = top;
  const place = (itemWidth: number) => {
    if (x + itemWidth > width - 16 && x > 16) {
      x = 16;
      y += 22;
    }
    const at = { x, y };
    x += itemWidth + 18;
    return at;
  };
  for (const status of STATUSES) {
    if (status === "running" && counts.running === 0) continue;
    const text = `${status} ${counts[status]}`;
    const at = place(32 + text.length * CHAR_WIDTH);
    const style = SVG_STYLE[status];
    const dashed = status === "interrupted" ? ` stroke-dasharray="4 2"` : "";
    elements.push(
      `<rect x="${at.x}" y="${at.y - 11}" width="22" height="14" rx="3" fill="${style.fill}" ` +
        `stroke="${style.stroke}" stroke-width="1.5"${dashed}/>`,
      `<text x="${at.x + 32}" y="${at.y}">${text}</text>`,
    );
    if (status === "interrupted") {
      const cx = at.x + 22;
      const cy = at.y - 4;
      elements.push(
        `<path d="M${cx - 4},${cy - 4} L${cx + 4},${cy + 4} M${cx + 4},${cy - 4} ` +
          `L${cx - 4},${cy + 4}" stroke="#c62828" stroke-width="2" stroke-linecap="round"/>`,
      );
    }
  }
  const redelivered = "↻ attempt > 1";
  const at = place(redelivered.length * CHAR_WIDTH);
  elements.push(`<text x="${at.x}" y="${at.y}">${escapeXml(redelivered)}</text>`);
  const linkText = "next attempt";
  const link = place(40 + linkText.length * CHAR_WIDTH);
  elements.push(
    `<path d="M${link.x},${link.y - 4} L${link.x + 30},${link.y - 4}" fill="none" ` +
      `stroke="${SVG_STYLE.interrupted.stroke}" stroke-width="1.5" stroke-dasharray="5 3" ` +
      `marker-end="url(#tareas-arrow-interrupted)"/>`,
    `<text x="${link.x + 40}" y="${link.y}">${linkText}</text>`,
  );
  elements.push(`</g>`);
  return { elements, bottom: y + 6 };
}

/** Rounds to a tenth of a pixel for compact output. */
function num(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Escapes text for XML content and attribute values; drops characters XML cannot hold. */
function escapeXml(text: string): string {
  return text.toWellFormed()
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "?")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}
