/**
 * What every part of the SVG timeline shares: the colours of each status, the sizes of a lane
 * and a bar, and the rounding and escaping of what goes into the document.
 * @module
 */
import type { BarStatus } from "../timeline.ts";

/** How an attempt of one status is drawn: its fill, its border, and the text on it. */
export interface SvgStyle {
  fill: string;
  stroke: string;
  text: string;
}

/** The style of each status. */
export const SVG_STYLE: Record<BarStatus, SvgStyle> = {
  completed: { fill: "#43a047", stroke: "#2e7d32", text: "#ffffff" },
  failed: { fill: "#ffb74d", stroke: "#ef6c00", text: "#4e2600" },
  dead: { fill: "#6a1b9a", stroke: "#4a148c", text: "#ffffff" },
  interrupted: { fill: "url(#tareas-hatch)", stroke: "#c62828", text: "#7f0000" },
  running: { fill: "#64b5f6", stroke: "#1565c0", text: "#0d2b4d" },
};

/** An estimate of the width of a 12px monospace character. */
export const CHAR_WIDTH = 7.2;
/** Height of a lane of a worker's row, in pixels. */
export const LANE_HEIGHT = 24;
/** Height of a bar, in pixels. */
export const BAR_HEIGHT = 16;

/** Rounds to a tenth of a pixel for compact output. */
export function num(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Escapes text for XML content and attribute values; drops characters XML cannot hold. */
export function escapeXml(value: unknown): string {
  return String(value).toWellFormed()
    // deno-lint-ignore no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, "?")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}
