import assert from "node:assert/strict";
import type { TareasEvent } from "../../core/events.ts";
import { RunRecord } from "../run_record.ts";
import { buildTimeline } from "../replay.ts";
import { RECORDED, syntheticRun, task, taskId, WORKERS } from "../../../testing/runs.ts";
import { renderTimelineSvg } from "./timeline_svg.ts";

const LABELS = Array.from({ length: 10 }, (_, i) => `#${i + 1}`);
const TASK_IDS = Array.from({ length: 10 }, (_, i) => taskId(i + 1));

interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** A small stack-based XML reader: throws on unbalanced or mismatched tags. */
function parseXml(source: string): XmlElement {
  const root: XmlElement = { name: "#document", attributes: {}, children: [], text: "" };
  const stack = [root];
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z][\w:.-]*)([^<>]*?)(\/?)>|([^<]+)|(<)/g;
  for (const match of source.matchAll(token)) {
    const [whole, closing, name, rest, selfClosing, text, stray] = match;
    const top = stack.at(-1);
    assert.ok(top);
    if (stray !== undefined) throw new Error(`Stray "<" at ${match.index}`);
    if (text !== undefined) {
      assert.doesNotMatch(text, /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i, "bare &");
      assert.doesNotMatch(text, />/, "bare > in text");
      top.text += unescape(text);
      continue;
    }
    if (name === undefined) continue; // comment or processing instruction
    if (closing === "/") {
      assert.equal(top.name, name, `</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attributes: Record<string, string> = {};
    const attribute = /\s+([\w:.-]+)="([^"<]*)"/gy;
    let consumed = 0;
    for (const [text, key, value] of (rest ?? "").matchAll(attribute)) {
      assert.ok(key !== undefined && value !== undefined);
      assert.ok(!(key in attributes), `duplicate attribute ${key} in ${whole}`);
      attributes[key] = unescape(value);
      consumed += text.length;
    }
    assert.equal((rest ?? "").slice(consumed).trim(), "", `malformed tag ${whole}`);
    const element: XmlElement = { name, attributes, children: [], text: "" };
    top.children.push(element);
    if (selfClosing !== "/") stack.push(element);
  }
  assert.equal(stack.length, 1, `unclosed <${stack.at(-1)?.name}>`);
  assert.equal(root.children.length, 1, "one root element");
  const svg = root.children[0];
  assert.ok(svg);
  return svg;
}

function unescape(text: string): string {
  return text.replace(
    /&(amp|lt|gt|quot|apos);/g,
    (_, name: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" })[name] ?? "",
  );
}

function descendants(element: XmlElement, name?: string): XmlElement[] {
  const all = element.children.flatMap((child) => [child, ...descendants(child)]);
  return name === undefined ? all : all.filter((child) => child.name === name);
}

function textOf(element: XmlElement): string {
  return element.text + element.children.map(textOf).join("");
}

function hasClass(element: XmlElement, name: string): boolean {
  return (element.attributes.class ?? "").split(" ").includes(name);
}

Deno.test("renderTimelineSvg is a well-formed standalone SVG document", () => {
  const source = renderTimelineSvg(buildTimeline(RECORDED, { killed: ["worker-b"] }), {
    title: "recorded run",
  });
  const svg = parseXml(source);
  assert.equal(svg.name, "svg");
  assert.equal(svg.attributes.xmlns, "http://www.w3.org/2000/svg");
  assert.match(svg.attributes.viewBox ?? "", /^0 0 960 \d+$/);
  assert.equal(svg.attributes.width, "960");
  assert.ok(Number(svg.attributes.height) > 100);
  assert.equal(svg.children.find((child) => child.name === "title")?.text, "recorded run");
  assert.doesNotMatch(source, /<script|href=|@import|url\((?!#)/, "no scripts or external links");
});

Deno.test("renderTimelineSvg draws one group per worker and one rect per bar", () => {
  const timeline = buildTimeline(RECORDED, { killed: ["worker-b"] });
  const svg = parseXml(renderTimelineSvg(timeline));
  const groups = descendants(svg, "g").filter((g) => hasClass(g, "worker"));
  assert.deepEqual(groups.map((g) => g.attributes["data-worker"]), WORKERS);
  groups.forEach((group, index) => {
    const name = group.children.find((child) => child.name === "text");
    assert.ok(textOf(name ?? group).startsWith(WORKERS[index] ?? "?"));
    const rects = descendants(group, "rect");
    assert.equal(rects.length, timeline.rows[index]?.bars.length, `rects of ${WORKERS[index]}`);
    for (const rect of rects) {
      assert.equal(rect.children.filter((child) => child.name === "title").length, 1);
    }
  });
  const tooltips = descendants(svg, "title").map(textOf).join("\n");
  for (const id of TASK_IDS) assert.ok(tooltips.includes(id), `task id ${id}`);
  const labels = groups.flatMap((g) => descendants(g, "text")).map(textOf).join(" ");
  for (const label of LABELS) assert.match(labels, new RegExp(`${label}(?!\\d)`), label);
  const ticks = descendants(svg, "g").find((g) => hasClass(g, "axis"));
  assert.deepEqual(
    descendants(ticks ?? svg, "text").map(textOf),
    ["0s", "0.5s", "1s", "1.5s", "2s", "2.5s", "3s", "3.5s", "4s", "4.5s", "5s"],
  );
  assert.ok(descendants(svg, "g").some((g) => hasClass(g, "legend")));
});

Deno.test("renderTimelineSvg marks the interrupted bar and the redelivery on another row", () => {
  const svg = parseXml(renderTimelineSvg(buildTimeline(RECORDED, { killed: ["worker-b"] })));
  const group = (worker: string) =>
    descendants(svg, "g").find((g) => g.attributes["data-worker"] === worker) ?? svg;
  const bars = (worker: string) =>
    descendants(group(worker), "g").filter((g) => hasClass(g, "bar"));

  const interrupted = bars("worker-b").filter((g) => hasClass(g, "interrupted"));
  assert.equal(interrupted.length, 1);
  const [cut] = interrupted;
  assert.ok(cut);
  assert.equal(cut.attributes["data-task"], taskId(7));
  assert.ok(descendants(cut, "path").some((path) => hasClass(path, "cross")), "cross marker");
  const rect = descendants(cut, "rect")[0];
  assert.equal(rect?.attributes.fill, "url(#tareas-hatch)");
  assert.match(textOf(rect ?? svg), /interrupted/);
  assert.match(textOf(group("worker-b")), /killed/);

  const redelivery = bars("worker-c").find((g) =>
    g.attributes["data-task"] === taskId(7) && hasClass(g, "redelivered")
  );
  assert.ok(redelivery, "redelivered #7 on worker-c");
  assert.ok(hasClass(redelivery, "completed"));
  assert.match(textOf(redelivery), /↻ #7/);
  assert.match(textOf(redelivery), /attempt 2 \(redelivered\)/);
  for (const g of bars("worker-a")) assert.ok(!hasClass(g, "interrupted"));

  const links = descendants(svg, "path").filter((path) => hasClass(path, "link"));
  assert.equal(links.filter((path) => hasClass(path, "interrupted")).length, 1, "#7 b → c");
  assert.equal(links.filter((path) => hasClass(path, "failed")).length, 1, "#5 a → c");
});

Deno.test("renderTimelineSvg escapes a hostile worker name and title", () => {
  const hostile = `<script>&"'`;
  const events = [
    task("task.started", hostile, 1, 1, "00.000"),
    task("task.completed", hostile, 1, 1, "01.000", { reason: "</title><script>" }),
  ];
  const source = renderTimelineSvg(buildTimeline(events, { killed: [hostile] }), {
    title: "a < b & c",
  });
  assert.doesNotMatch(source, /<script/);
  assert.match(source, /&lt;script&gt;&amp;&quot;&apos;/);
  const svg = parseXml(source);
  const group = descendants(svg, "g").find((g) => hasClass(g, "worker"));
  assert.equal(group?.attributes["data-worker"], hostile);
  assert.ok(textOf(group?.children[0] ?? svg).startsWith(hostile));
  assert.equal(svg.children.find((child) => child.name === "title")?.text, "a < b & c");
});

Deno.test("renderTimelineSvg of no events is still a document", () => {
  assert.match(renderTimelineSvg(buildTimeline([])), /<\/svg>/);
  parseXml(renderTimelineSvg(buildTimeline([])));
});

Deno.test("renderTimelineSvg survives odd fields in a hand-made timeline", () => {
  const timeline = buildTimeline(RECORDED);
  const bar = timeline.rows[0]?.bars[0];
  assert.ok(bar);
  Object.assign(bar, { status: "bogus", attempt: '"><script>', taskId: 7, reason: "\u0000x" });
  const source = renderTimelineSvg(timeline);
  assert.doesNotMatch(source, /<script/);
  parseXml(source);
});

Deno.test("renderTimelineSvg draws a million events as bounded strips with an aggregated legend", () => {
  const run = syntheticRun(500_000, 16);
  const record = new RunRecord(undefined, { startedAt: Date.parse("2025-03-01T10:00:00Z") });
  for (const event of run.events) record.record(event);
  const source = renderTimelineSvg(record.timeline(), { title: "a million events" });
  assert.ok(source.length < 1_000_000, `${source.length} characters`);
  const svg = parseXml(source);
  const groups = descendants(svg, "g").filter((g) => hasClass(g, "worker"));
  assert.equal(groups.length, 16);
  for (const group of groups) {
    const strips = descendants(group, "path").filter((path) => hasClass(path, "strip"));
    assert.ok(strips.some((path) => hasClass(path, "completed")), "completed columns");
    assert.ok(strips.length <= 5, "one path per status");
    assert.equal(descendants(group, "rect").length, 0, "no bar per attempt");
  }
  const legend = descendants(svg, "g").find((g) => hasClass(g, "legend"));
  assert.match(textOf(legend ?? svg), /bars aggregated/);
  assert.match(textOf(legend ?? svg), new RegExp(`dead ${run.dead}(?!\\d)`));
});

Deno.test("renderTimelineSvg of a run flooded with forged workers and times stays small", () => {
  // Tried: 20,000 forged worker names made an 8.6 MB SVG; a forged `at` of year 275760 made the
  // axis "17280000000000s" long.
  const at = "2025-03-01T10:00:03.000Z";
  const forged: TareasEvent[] = [
    { ...task("task.completed", "worker-a", 11, 1, "00.000"), at: "+275760-09-13T00:00:00.000Z" },
  ];
  for (let i = 0; i < 20_000; i++) {
    forged.push({ type: "worker.status", worker: `forged-${i}`, at });
    forged.push(task("task.completed", `forger-${i}`, 1, 1, "03.000", { durationMs: 5 }));
  }
  const timeline = buildTimeline([...RECORDED, ...forged], { killed: ["worker-b"] });
  const source = renderTimelineSvg(timeline);
  assert.ok(source.length < 200_000, `${source.length} characters`);
  const svg = parseXml(source);
  const groups = descendants(svg, "g").filter((g) => hasClass(g, "worker"));
  assert.equal(groups.length, 100);
  const names = groups.map((g) => g.attributes["data-worker"]);
  assert.deepEqual(names.slice(0, 3), WORKERS, "the real workers are drawn, first");
  const notes = descendants(svg, "text").filter((text) => hasClass(text, "left-out"));
  assert.deepEqual(notes.map((text) => text.text), [
    "… and 20900 more workers not drawn",
    "19003 events of workers not tracked left out",
    "1 event stamped outside the run's time window left out",
  ]);
  assert.doesNotMatch(source, /\d{6,}s/, "no absurd time on the axis");
});
