import assert from "node:assert/strict";
import type { TareasEvent } from "../../core/events.ts";
import { RunRecord } from "../run_record.ts";
import { buildTimeline } from "../replay.ts";
import { RECORDED, syntheticRun, task, WORKERS } from "../../../testing/runs.ts";
import { renderTimelineText } from "./timeline_text.ts";

const ESC = "\x1b";
const LABELS = Array.from({ length: 10 }, (_, i) => `#${i + 1}`);

Deno.test("renderTimelineText of no events says so", () => {
  assert.match(renderTimelineText(buildTimeline([])), /no events/);
});

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
  // printable() shows the characters as escapes (it used to replace them with "?").
  assert.match(text, /evil\\x1b\[2J\\nname/);
});

Deno.test("renderTimelineText draws a million events as one bounded strip per worker", () => {
  const run = syntheticRun(500_000, 16);
  const record = new RunRecord(undefined, { startedAt: Date.parse("2025-03-01T10:00:00Z") });
  let events = 0;
  for (const event of run.events) {
    record.record(event);
    events++;
  }
  assert.ok(events >= 1_000_000, `${events} events`);
  const timeline = record.timeline({ killed: ["worker-3"] });
  assert.equal(timeline.aggregated, true);
  const text = renderTimelineText(timeline, { width: 100 });
  const lines = text.split("\n");
  assert.ok(lines.length < 30, `${lines.length} lines`);
  for (const line of lines) assert.ok([...line].length <= 100, `too wide: ${line}`);
  assert.match(text, /bars aggregated/);
  assert.match(text, /completed 4\d{5}/);
  assert.match(text, new RegExp(`dead ${run.dead}(?!\\d)`));
  const row = lines.find((line) => line.startsWith("worker-3 (killed)")) ?? "";
  assert.match(row, /[▁▂▃▄▅▆▇█]{50}/, "a dense strip");
  assert.ok(text.length < 20_000, `${text.length} characters`);
  assert.ok(renderTimelineText(timeline, { color: true }).includes(`${ESC}[32m`));
});

Deno.test("renderTimelineText of a run flooded with forged workers and times stays short", () => {
  const at = "2025-03-01T10:00:03.000Z";
  const forged: TareasEvent[] = [
    { ...task("task.completed", "worker-a", 11, 1, "00.000"), at: "+275760-09-13T00:00:00.000Z" },
  ];
  for (let i = 0; i < 5_000; i++) forged.push({ type: "worker.online", worker: `forged-${i}`, at });
  const plain = renderTimelineText(buildTimeline(RECORDED, { killed: ["worker-b"] }));
  const text = renderTimelineText(
    buildTimeline([...RECORDED, ...forged], { killed: ["worker-b"], maxRows: 10 }),
  );
  const lines = text.split("\n");
  assert.equal(lines.length, plain.split("\n").length + 7 + 2, text);
  assert.equal(lines[0], "10 workers · 10 tasks · 12 attempts · 5.05s", "the run's own span");
  assert.equal(lines.at(-2), "… and 4993 more workers not drawn");
  assert.equal(lines.at(-1), "1 event stamped outside the run's time window left out");
});
