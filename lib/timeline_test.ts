import assert from "node:assert/strict";
import type { TareasEvent } from "./events.ts";
import {
  buildTimeline,
  renderTimelineSvg,
  renderTimelineText,
  type Timeline,
  type TimelineBar,
} from "./timeline.ts";

/**
 * A recorded run: three workers with prefetch 1, ten tasks. `worker-b` is killed (SIGKILL) while
 * it runs #7; the broker redelivers #7 to `worker-c` (attempt 2, redelivered), which completes
 * it. #5 fails once on `worker-a` and its retry completes on `worker-c`; #10 is dead-lettered.
 */
const RECORDED: TareasEvent[] = [
  { type: "worker.online", worker: "worker-a", at: "2025-03-01T10:00:00.000Z" },
  { type: "worker.online", worker: "worker-b", at: "2025-03-01T10:00:00.050Z" },
  { type: "worker.online", worker: "worker-c", at: "2025-03-01T10:00:00.100Z" },
  task("task.started", "worker-a", 1, 1, "00.200"),
  task("task.started", "worker-b", 2, 1, "00.250"),
  task("task.started", "worker-c", 3, 1, "00.300"),
  task("task.completed", "worker-b", 2, 1, "01.050", { durationMs: 800 }),
  task("task.started", "worker-b", 4, 1, "01.100"),
  task("task.completed", "worker-a", 1, 1, "01.200", { durationMs: 1000 }),
  task("task.started", "worker-a", 5, 1, "01.250"),
  task("task.completed", "worker-c", 3, 1, "01.600", { durationMs: 1300 }),
  task("task.started", "worker-c", 6, 1, "01.650"),
  task("task.completed", "worker-b", 4, 1, "02.000", { durationMs: 900 }),
  task("task.started", "worker-b", 7, 1, "02.050"),
  task("task.failed", "worker-a", 5, 1, "02.400", { durationMs: 1150, reason: "boom" }),
  task("task.started", "worker-a", 8, 1, "02.450"),
  task("task.completed", "worker-c", 6, 1, "03.050", { durationMs: 1400 }),
  task("task.started", "worker-c", 7, 2, "03.100", { redelivered: true }),
  task("task.completed", "worker-a", 8, 1, "03.400", { durationMs: 950 }),
  task("task.started", "worker-a", 9, 1, "03.450"),
  task("task.completed", "worker-c", 7, 2, "04.200", { durationMs: 1100, redelivered: true }),
  task("task.started", "worker-c", 5, 2, "04.250"),
  task("task.completed", "worker-a", 9, 1, "04.500", { durationMs: 1050 }),
  task("task.started", "worker-a", 10, 1, "04.550"),
  task("task.dead", "worker-a", 10, 1, "04.900", { reason: "invalid payload" }),
  task("task.completed", "worker-c", 5, 2, "04.950", { durationMs: 700 }),
  { type: "worker.offline", worker: "worker-a", at: "2025-03-01T10:00:05.000Z" },
  { type: "worker.offline", worker: "worker-c", at: "2025-03-01T10:00:05.050Z" },
];

const ESC = "\x1b";
const WORKERS = ["worker-a", "worker-b", "worker-c"];
const LABELS = Array.from({ length: 10 }, (_, i) => `#${i + 1}`);
const TASK_IDS = Array.from({ length: 10 }, (_, i) => taskId(i + 1));

function taskId(seq: number): string {
  return `0b7e5c1a-4f2d-4e8a-9c3b-${String(seq).padStart(12, "0")}`;
}

function task(
  type: "task.started" | "task.completed" | "task.failed" | "task.dead",
  worker: string,
  seq: number,
  attempt: number,
  secondsAt: string,
  extra: { durationMs?: number; reason?: string; redelivered?: boolean } = {},
): TareasEvent {
  return {
    type,
    worker,
    at: `2025-03-01T10:00:${secondsAt}Z`,
    taskId: taskId(seq),
    seq,
    attempt,
    redelivered: false,
    ...extra,
  };
}

function findBar(timeline: Timeline, worker: string, seq: number): TimelineBar {
  const row = timeline.rows.find((row) => row.worker === worker);
  const bar = row?.bars.find((bar) => bar.seq === seq);
  assert.ok(bar, `no bar for #${seq} on ${worker}`);
  return bar;
}

/** Deterministic shuffle, so the test does not depend on the recorded order. */
function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  let state = 42;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

Deno.test("buildTimeline gives one row per worker in order of first appearance", () => {
  const timeline = buildTimeline(shuffled(RECORDED), { killed: ["worker-b"] });
  assert.deepEqual(timeline.rows.map((row) => row.worker), WORKERS);
  assert.deepEqual(timeline.rows.map((row) => row.bars.length), [5, 3, 4]);
  assert.deepEqual(timeline.rows.map((row) => row.killed), [false, true, false]);
  assert.deepEqual(timeline.rows.map((row) => row.lanes), [1, 1, 1]);
  assert.equal(timeline.start.toISOString(), "2025-03-01T10:00:00.000Z");
  assert.equal(timeline.end.toISOString(), "2025-03-01T10:00:05.050Z");
  const seqs = timeline.rows.flatMap((row) => row.bars.map((bar) => bar.seq));
  assert.deepEqual([...new Set(seqs)].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

Deno.test("buildTimeline matches each start to the end event of the same attempt", () => {
  const timeline = buildTimeline(RECORDED);
  const first = findBar(timeline, "worker-a", 1);
  assert.equal(first.status, "completed");
  assert.equal(first.label, "#1");
  assert.equal(first.durationMs, 1000);
  assert.equal(first.redelivered, false);
  assert.deepEqual(
    timeline.rows[0]?.bars.map((bar) => [bar.label, bar.status]),
    [["#1", "completed"], ["#5", "failed"], ["#8", "completed"], ["#9", "completed"], [
      "#10",
      "dead",
    ]],
  );
  assert.equal(findBar(timeline, "worker-a", 5).reason, "boom");
  assert.equal(findBar(timeline, "worker-a", 10).reason, "invalid payload");
  const retry = findBar(timeline, "worker-c", 5);
  assert.equal(retry.attempt, 2);
  assert.equal(retry.redelivered, true, "attempt > 1 counts as a redelivery");
});

Deno.test("a task held by a killed worker is interrupted and its redelivery completes elsewhere", () => {
  for (const killed of [["worker-b"], []]) {
    const timeline = buildTimeline(RECORDED, { killed });
    const interrupted = findBar(timeline, "worker-b", 7);
    assert.equal(interrupted.status, "interrupted");
    assert.equal(interrupted.attempt, 1);
    assert.equal(interrupted.redelivered, false);
    // The start was worker-b's last event, so the bar ends when #7 next started (on worker-c).
    assert.equal(interrupted.start.toISOString(), "2025-03-01T10:00:02.050Z");
    assert.equal(interrupted.end.toISOString(), "2025-03-01T10:00:03.100Z");
    const redelivery = findBar(timeline, "worker-c", 7);
    assert.equal(redelivery.status, "completed");
    assert.equal(redelivery.attempt, 2);
    assert.equal(redelivery.redelivered, true);
  }
});

Deno.test("an interrupted attempt ends at the worker's last event when that came later", () => {
  // worker-x ran two tasks concurrently, finished one, then died holding the other.
  const events: TareasEvent[] = [
    { type: "worker.online", worker: "worker-x", at: "2025-03-01T10:00:00.000Z" },
    task("task.started", "worker-x", 1, 1, "00.100"),
    task("task.started", "worker-x", 2, 1, "00.200"),
    task("task.completed", "worker-x", 2, 1, "01.000"),
    task("task.started", "worker-y", 1, 2, "03.000", { redelivered: true }),
    task("task.completed", "worker-y", 1, 2, "04.000", { redelivered: true }),
  ];
  const timeline = buildTimeline(events, { killed: ["worker-x"] });
  const bar = findBar(timeline, "worker-x", 1);
  assert.equal(bar.status, "interrupted");
  assert.equal(bar.end.toISOString(), "2025-03-01T10:00:01.000Z");
  assert.equal(timeline.rows[0]?.lanes, 2);
  assert.deepEqual(timeline.rows[0]?.bars.map((bar) => bar.lane), [0, 1]);
});

Deno.test("an attempt with no end and no sign of interruption is running until now", () => {
  const events: TareasEvent[] = [task("task.started", "worker-a", 1, 1, "00.000")];
  const now = new Date("2025-03-01T10:00:02.000Z");
  const timeline = buildTimeline(events, { now });
  const bar = findBar(timeline, "worker-a", 1);
  assert.equal(bar.status, "running");
  assert.equal(bar.end.getTime(), now.getTime());
  assert.equal(timeline.end.getTime(), now.getTime());
  assert.equal(
    buildTimeline(events, { now, killed: ["worker-a"] }).rows[0]?.bars[0]?.status,
    "interrupted",
  );
});

Deno.test("an end event without its start gives a bar of its duration", () => {
  const events = [task("task.completed", "worker-a", 3, 1, "02.000", { durationMs: 1500 })];
  const timeline = buildTimeline(events);
  const bar = findBar(timeline, "worker-a", 3);
  assert.equal(bar.start.toISOString(), "2025-03-01T10:00:00.500Z");
  assert.equal(timeline.start.toISOString(), "2025-03-01T10:00:00.500Z");
});

Deno.test("buildTimeline of no events is empty", () => {
  const timeline = buildTimeline([]);
  assert.deepEqual(timeline.rows, []);
  assert.match(renderTimelineText(timeline), /no events/);
  assert.match(renderTimelineSvg(timeline), /<\/svg>/);
});

// ---------------------------------------------------------------------------------------------
// Text

Deno.test("renderTimelineText draws one row per worker with every label", () => {
  const text = renderTimelineText(buildTimeline(RECORDED, { killed: ["worker-b"] }));
  const lines = text.split("\n");
  for (const worker of WORKERS) {
    assert.equal(lines.filter((line) => line.startsWith(worker)).length, 1, worker);
  }
  for (const label of LABELS) {
    assert.match(text, new RegExp(`${label}(?!\\d)`), `label ${label}`);
  }
  for (const line of lines) {
    assert.ok([...line].length <= 80, `line wider than 80 columns: ${line}`);
  }
  assert.ok(!text.includes(ESC), "no ANSI escapes unless color is on");
  assert.match(text, /0s .* 1s .* 2s .* 3s .* 4s .* 5s/, "ruler of seconds");
  assert.match(text, /interrupted 1/, "legend");
});

Deno.test("renderTimelineText marks the interrupted bar and the redelivery on another row", () => {
  const text = renderTimelineText(buildTimeline(RECORDED, { killed: ["worker-b"] }));
  const row = (worker: string) => text.split("\n").find((line) => line.startsWith(worker)) ?? "";
  assert.match(row("worker-b"), /^worker-b \(killed\)/);
  assert.match(row("worker-b"), /░*#7░*✗/, "interrupted #7 is hatched and ends in ✗");
  assert.match(row("worker-c"), /↻█*#7█/, "redelivered #7 completes on worker-c");
  assert.match(row("worker-c"), /↻█*#5█/, "retried #5 completes on worker-c");
  assert.doesNotMatch(row("worker-a"), /[↻✗]/);
});

Deno.test("renderTimelineText scales to the width and colours only on request", () => {
  const timeline = buildTimeline(RECORDED, { killed: ["worker-b"] });
  const wide = renderTimelineText(timeline, { width: 140 });
  assert.ok(wide.split("\n").some((line) => [...line].length > 100));
  const coloured = renderTimelineText(timeline, { color: true });
  assert.ok(coloured.includes(`${ESC}[32m█`));
  // deno-lint-ignore no-control-regex
  const plain = coloured.replace(/\x1b\[[0-9;]*m/g, "");
  assert.equal(plain, renderTimelineText(timeline));
});

Deno.test("renderTimelineText neutralises control characters in worker names", () => {
  const events = [
    task("task.completed", "evil\x1b[2J\nname", 1, 1, "01.000", { durationMs: 1000 }),
  ];
  const text = renderTimelineText(buildTimeline(events));
  assert.ok(!text.includes(ESC));
  assert.match(text, /evil\?\[2J\?name/);
});

// ---------------------------------------------------------------------------------------------
// SVG

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
