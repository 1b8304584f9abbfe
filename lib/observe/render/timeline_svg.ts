/**
 * Draws a {@linkcode Timeline} as a standalone SVG document: one bar per attempt, or a dense
 * strip per worker when the timeline is aggregated. Every text is escaped for XML.
 * @module
 */
import {
  BAR_STATUSES,
  type BarStatus,
  type Timeline,
  type TimelineBar,
  type TimelineRow,
} from "../timeline.ts";
import {
  type Columns,
  formatSeconds,
  headline,
  leftOut,
  stripColumns,
  tickStep,
} from "./_timeline.ts";

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
/** Characters of a worker's name drawn (the whole name is in `data-worker`, up to 1000). */
const NAME_CHARS = 34;
/** Width of a column of an aggregated strip, in pixels. */
const STRIP_COLUMN = 3;
/** How the statuses stack in a column of an aggregated strip, bottom first. */
const STACK: readonly BarStatus[] = ["completed", "running", "failed", "dead", "interrupted"];

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
  const legendTop = rowsBottom + 22;
  const legend = svgLegend(
    timeline,
    width,
    legendTop,
    strips && {
      columnMs: spanMs / columns,
      max: strips.max,
    },
  );
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
    `<text class="summary" x="16" y="45" fill="#616161">${escapeXml(headline(timeline))} · ` +
      `from ${escapeXml(isoString(timeline.start))}</text>`,
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

  return [...out, ...svgLinks(timeline, centreOf), ...legend.elements, `</svg>`].join("\n") + "\n";
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

/** One worker's aggregated strip: a tooltip, then one path per status of stacked columns. */
function svgStrip(
  columns: Columns,
  max: number,
  left: number,
  columnWidth: number,
  top: number,
  worker: string,
): string {
  const tooltip = [
    `worker ${worker}`,
    ...BAR_STATUSES.map((status) => {
      const total = columns.byStatus[status].reduce((sum, count) => sum + count, 0);
      return total > 0 ? `${status} ${Math.round(total)}` : "";
    }).filter((line) => line !== ""),
  ].join("\n");
  const paths = new Map<BarStatus, string[]>(STACK.map((status) => [status, []]));
  const laneBottom = top + LANE_HEIGHT - 2;
  const fullHeight = LANE_HEIGHT - 4;
  columns.totals.forEach((total, column) => {
    if (total <= 1e-9 || max <= 0) return;
    const height = Math.max(1, (total / max) * fullHeight);
    const x = num(left + column * columnWidth);
    const w = num(Math.max(0.5, columnWidth - 0.5));
    let y = laneBottom;
    for (const status of STACK) {
      const count = columns.byStatus[status][column] ?? 0;
      if (count <= 1e-9) continue;
      const h = (count / total) * height;
      paths.get(status)?.push(`M${x},${num(y - h)}h${w}v${num(h)}h${-w}z`);
      y -= h;
    }
  });
  const parts = [`<g class="strip"><title>${escapeXml(tooltip)}</title>`];
  for (const [status, d] of paths) {
    if (d.length === 0) continue;
    const fill = status === "interrupted" ? SVG_STYLE.interrupted.stroke : SVG_STYLE[status].fill;
    parts.push(`<path class="strip ${status}" fill="${fill}" d="${d.join("")}"/>`);
  }
  parts.push(`</g>`);
  return parts.join("");
}

function svgBar(bar: TimelineBar, worker: string, x: number, top: number, w: number): string {
  const status: BarStatus = BAR_STATUSES.includes(bar.status) ? bar.status : "running";
  const style = SVG_STYLE[status];
  const tooltip = [
    `${bar.label} task ${bar.taskId}`,
    `attempt ${bar.attempt}${bar.redelivered ? " (redelivered)" : ""}`,
    `${status} after ${formatSeconds(Number(bar.durationMs) || 0, 1)}`,
    `worker ${worker}`,
    ...(bar.reason === undefined ? [] : [`reason: ${bar.reason}`]),
  ].join("\n");
  const dashed = status === "interrupted" ? ` stroke-dasharray="4 2"` : "";
  const parts = [
    `<g class="bar ${status}${bar.redelivered ? " redelivered" : ""}" ` +
    `data-task="${escapeXml(bar.taskId)}" data-attempt="${escapeXml(bar.attempt)}">`,
    `<rect x="${num(x)}" y="${num(top)}" width="${num(w)}" height="${BAR_HEIGHT}" rx="3" ` +
    `fill="${style.fill}" stroke="${style.stroke}" stroke-width="1.5"${dashed}>` +
    `<title>${escapeXml(tooltip)}</title></rect>`,
  ];
  const label = (bar.redelivered ? "↻ " : "") + String(bar.label);
  const labelWidth = [...label].length * 6.6 + 8;
  const room = w - (status === "interrupted" ? 8 : 0);
  if (labelWidth <= room) {
    parts.push(
      `<text x="${num(x + room / 2)}" y="${num(top + BAR_HEIGHT / 2 + 4)}" ` +
        `text-anchor="middle" font-size="11" font-weight="bold" fill="${style.text}" ` +
        `pointer-events="none">${escapeXml(label)}</text>`,
    );
  }
  if (status === "interrupted") {
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
  aggregated: { columnMs: number; max: number } | undefined,
): { elements: string[]; bottom: number } {
  const counts = timeline.counts;
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
  const close = () => {
    for (const note of leftOut(timeline)) {
      const at = place(note.length * CHAR_WIDTH);
      elements.push(`<text class="left-out" x="${at.x}" y="${at.y}">${escapeXml(note)}</text>`);
    }
    elements.push(`</g>`);
    return { elements, bottom: y + 6 };
  };
  for (const status of BAR_STATUSES) {
    if (status === "running" && counts.running === 0) continue;
    const text = `${status} ${counts[status]}`;
    const at = place(32 + text.length * CHAR_WIDTH);
    const style = SVG_STYLE[status];
    if (aggregated !== undefined) {
      const fill = status === "interrupted" ? style.stroke : style.fill;
      elements.push(
        `<rect x="${at.x}" y="${at.y - 11}" width="22" height="14" fill="${fill}"/>`,
        `<text x="${at.x + 32}" y="${at.y}">${text}</text>`,
      );
      continue;
    }
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
  if (aggregated !== undefined) {
    const text = `bars aggregated: a column's height is the attempts that ended in its ` +
      `${formatSeconds(aggregated.columnMs, aggregated.columnMs / 10)}, ` +
      `split by status (tallest ${Math.round(aggregated.max)})`;
    const at = place(text.length * CHAR_WIDTH);
    elements.push(`<text class="aggregated" x="${at.x}" y="${at.y}">${escapeXml(text)}</text>`);
    return close();
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
  return close();
}

/** Rounds to a tenth of a pixel for compact output. */
function num(value: number): number {
  return Math.round(value * 10) / 10;
}

/** An ISO 8601 date, or an empty string for an invalid one. */
function isoString(date: Date): string {
  return Number.isFinite(date.getTime()) ? date.toISOString() : "";
}

function truncate(text: string, length: number): string {
  const chars = [...text];
  return chars.length <= length ? text : `${chars.slice(0, length - 1).join("")}…`;
}

/** Escapes text for XML content and attribute values; drops characters XML cannot hold. */
function escapeXml(value: unknown): string {
  return String(value).toWellFormed()
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "?")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}
