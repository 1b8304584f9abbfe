/**
 * Draws a {@linkcode Timeline} as a standalone SVG document: one bar per attempt, or a dense
 * strip per worker when the timeline is aggregated. Every text is escaped for XML.
 * @module
 */
import type { Timeline, TimelineBar, TimelineRow } from "../timeline.ts";
import { type Columns, formatSeconds, headline, stripColumns, tickStep } from "./_timeline.ts";
import { BAR_HEIGHT, CHAR_WIDTH, escapeXml, LANE_HEIGHT, num, SVG_STYLE } from "./_svg.ts";
import { svgLegend } from "./_svg_legend.ts";
import { svgBar, svgLinks, svgStrip } from "./_svg_marks.ts";

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

const FONT = "ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', 'Liberation Mono', monospace";
const ROW_PADDING = 6;
/** Characters of a worker's name drawn (the whole name is in `data-worker`, up to 1000). */
const NAME_CHARS = 34;
/** Width of a column of an aggregated strip, in pixels. */
const STRIP_COLUMN = 3;

/**
 * Draws a timeline as a standalone SVG document: a title and summary, a time axis in seconds
 * with grid lines, one `<g class="worker">` per worker (its name, a grey line from its first to
 * its last event, one `<rect>` per attempt with a `<title>` tooltip and a `#seq` label), dashed
 * arrows from each interrupted or failed attempt to the task's next attempt, and a legend.
 * Interrupted attempts are hatched red with a dashed border and a cross at their end.
 *
 * An aggregated timeline draws each worker as a strip of thin columns instead: a column's
 * height is the attempts that ended in it (relative to the busiest column of any worker), split
 * by status; one `<path class="strip STATUS">` per worker and status keeps the document small.
 * The legend says the bars are aggregated and over how long a column.
 *
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
  const layout = layOut(timeline, width);
  const { strips } = layout;
  const legend = svgLegend(
    timeline,
    width,
    layout.rowsBottom + 22,
    strips && {
      columnMs: layout.spanMs / layout.columns,
      max: strips.max,
    },
  );
  const height = legend.bottom + 14;
  const rows = svgRows(timeline, layout);
  // Row stripes, then the axis and its grid, then the rows on top.
  return [
    ...svgHead(timeline, { title, width, height }),
    ...svgStripes(timeline, layout),
    ...svgAxis(layout),
    ...rows.elements,
    ...svgLinks(timeline, rows.centreOf),
    ...legend.elements,
    `</svg>`,
  ].join("\n") + "\n";
}

/** Where things go on the page: the names' column, the chart, and each row's top. */
interface Layout {
  width: number;
  /** Each row's worker name, shortened to {@linkcode NAME_CHARS}. */
  names: string[];
  chartLeft: number;
  chartWidth: number;
  startMs: number;
  spanMs: number;
  /** Where a time falls across the chart. */
  xOf: (date: Date) => number;
  /** Columns of an aggregated strip. */
  columns: number;
  /** The columns of each row's strip, when the timeline is aggregated. */
  strips: { rows: (Columns | undefined)[]; max: number } | undefined;
  axisTop: number;
  rowTops: number[];
  rowsBottom: number;
}

/** Where things go when `timeline` is drawn `width` pixels wide. */
function layOut(timeline: Timeline, width: number): Layout {
  const names = timeline.rows.map((row) => truncate(String(row.worker), NAME_CHARS));
  const longestName = timeline.rows.reduce(
    (longest, row, index) =>
      Math.max(longest, [...(names[index] ?? "")].length + (row.killed ? 9 : 0)),
    4,
  );
  const nameWidth = Math.min(260, Math.max(80, longestName * CHAR_WIDTH + 12));
  const chartLeft = 16 + nameWidth;
  const chartWidth = width - chartLeft - 28;
  const startMs = timeline.start.getTime();
  const spanMs = Math.max(1, timeline.end.getTime() - startMs);
  const xOf = (date: Date) => chartLeft + ((date.getTime() - startMs) / spanMs) * chartWidth;
  const columns = Math.max(1, Math.floor(chartWidth / STRIP_COLUMN));
  const strips = timeline.aggregated
    ? stripsOf(timeline.rows, startMs, spanMs, columns)
    : undefined;

  const axisTop = 78;
  const rowsTop = axisTop + 8;
  const rowTops: number[] = [];
  let y = rowsTop;
  for (const row of timeline.rows) {
    rowTops.push(y);
    y += row.lanes * LANE_HEIGHT + 2 * ROW_PADDING;
  }
  const rowsBottom = y;
  return {
    width,
    names,
    chartLeft,
    chartWidth,
    startMs,
    spanMs,
    xOf,
    columns,
    strips,
    axisTop,
    rowTops,
    rowsBottom,
  };
}

/** The document's start: its title, the patterns and markers, the background and the headline. */
function svgHead(
  timeline: Timeline,
  { title, width, height }: { title: string; width: number; height: number },
): string[] {
  return [
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
    `<text class="summary" x="16" y="45" fill="#616161">${escapeXml(headline(timeline))} · ` +
    `from ${escapeXml(isoString(timeline.start))}</text>`,
  ];
}

/** A grey stripe behind every other row. */
function svgStripes(timeline: Timeline, { width, rowTops, rowsBottom }: Layout): string[] {
  const out = [`<g class="stripes">`];
  timeline.rows.forEach((_, index) => {
    if (index % 2 === 1) return;
    const top = rowTops[index] ?? 0;
    const bottom = rowTops[index + 1] ?? rowsBottom;
    out.push(
      `<rect x="8" y="${top}" width="${width - 16}" height="${bottom - top}" fill="#f5f5f5"/>`,
    );
  });
  out.push(`</g>`);
  return out;
}

/** The time axis in seconds, with a grid line at each tick. */
function svgAxis({ spanMs, chartLeft, chartWidth, axisTop, rowsBottom }: Layout): string[] {
  const out: string[] = [];
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
  return out;
}

/** Where a bar is drawn: its ends and its vertical centre, for the arrows between attempts. */
type Centres = Map<TimelineBar, { x0: number; x1: number; y: number }>;

/** One `<g class="worker">` per row: its name, its line of life, its strip or its bars. */
function svgRows(
  timeline: Timeline,
  { names, rowTops, xOf, strips, chartLeft, chartWidth, columns }: Layout,
): { elements: string[]; centreOf: Centres } {
  const out: string[] = [];
  const centreOf: Centres = new Map();
  timeline.rows.forEach((row, index) => {
    const top = (rowTops[index] ?? 0) + ROW_PADDING;
    const nameY = num(top + LANE_HEIGHT / 2 + 4);
    const worker = String(row.worker);
    out.push(`<g class="worker" data-worker="${escapeXml(worker.slice(0, 1000))}">`);
    out.push(
      `<text class="name" x="16" y="${nameY}" fill="#212121">${escapeXml(names[index] ?? "")}` +
        (row.killed ? `<tspan dx="7" fill="#c62828">killed</tspan>` : "") + `</text>`,
    );
    const lifeY = num(top + LANE_HEIGHT / 2);
    out.push(
      `<line class="alive" x1="${num(xOf(row.firstSeen))}" y1="${lifeY}" ` +
        `x2="${num(xOf(row.lastSeen))}" y2="${lifeY}" stroke="#bdbdbd" stroke-width="2"/>`,
    );
    const columnsOfRow = strips?.rows[index];
    if (strips !== undefined && columnsOfRow !== undefined) {
      out.push(svgStrip(columnsOfRow, strips.max, chartLeft, chartWidth / columns, top, worker));
    }
    for (const bar of row.bars) {
      const x0 = xOf(bar.start);
      // 1px short of the end, so back-to-back attempts stay apart.
      const barWidth = Math.max(2, xOf(bar.end) - x0 - 1);
      const barTop = top + bar.lane * LANE_HEIGHT + (LANE_HEIGHT - BAR_HEIGHT) / 2;
      centreOf.set(bar, { x0, x1: x0 + barWidth, y: barTop + BAR_HEIGHT / 2 });
      out.push(svgBar(bar, worker, x0, barTop, barWidth));
    }
    out.push(`</g>`);
  });
  return { elements: out, centreOf };
}

/** The columns of every aggregated row, on one scale: the busiest column of any row. */
function stripsOf(
  rows: readonly TimelineRow[],
  startMs: number,
  spanMs: number,
  columns: number,
): { rows: (Columns | undefined)[]; max: number } {
  const sampled = rows.map((row) =>
    row.strip === undefined ? undefined : stripColumns(row.strip, startMs, spanMs, columns)
  );
  let max = 0;
  for (const row of sampled) row?.totals.forEach((total) => max = Math.max(max, total));
  return { rows: sampled, max };
}

/** An ISO 8601 date, or an empty string for an invalid one. */
function isoString(date: Date): string {
  return Number.isFinite(date.getTime()) ? date.toISOString() : "";
}

function truncate(text: string, length: number): string {
  const chars = [...text];
  return chars.length <= length ? text : `${chars.slice(0, length - 1).join("")}…`;
}
