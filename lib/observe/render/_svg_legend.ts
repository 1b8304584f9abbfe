/**
 * The legend under the SVG timeline: a swatch and a count per status, what the marks mean, and
 * what the drawing left out.
 * @module
 */
import { BAR_STATUSES, type Timeline } from "../timeline.ts";
import { formatSeconds, leftOut } from "./_timeline.ts";
import { CHAR_WIDTH, escapeXml, SVG_STYLE } from "./_svg.ts";

/**
 * The legend's elements, from `top`, wrapped at `width`, and where it ends; `aggregated` says
 * over how long a column of a strip counts and the tallest column, when the timeline is.
 */
export function svgLegend(
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
