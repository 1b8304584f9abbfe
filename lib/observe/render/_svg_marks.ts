/**
 * What the SVG timeline draws for attempts: a bar per attempt, a worker's strip of stacked columns
 * when the timeline is aggregated, and the arrows from an attempt to the task's next one.
 * @module
 */
import { BAR_STATUSES, type BarStatus, type Timeline, type TimelineBar } from "../timeline.ts";
import { type Columns, formatSeconds } from "./_timeline.ts";
import { BAR_HEIGHT, escapeXml, LANE_HEIGHT, num, SVG_STYLE } from "./_svg.ts";

/** How the statuses stack in a column of an aggregated strip, bottom first. */
const STACK: readonly BarStatus[] = ["completed", "running", "failed", "dead", "interrupted"];

/** One worker's aggregated strip: a tooltip, then one path per status of stacked columns. */
export function svgStrip(
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

/** One attempt: its rect with a tooltip, its label when it fits, a cross when interrupted. */
export function svgBar(
  bar: TimelineBar,
  worker: string,
  x: number,
  top: number,
  w: number,
): string {
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
export function svgLinks(
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
