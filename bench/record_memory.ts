/**
 * Measures the memory a {@linkcode RunRecord} keeps per task: records a synthetic run of N tasks
 * with UUID ids (about two events per task, generated as they are consumed and parsed from JSON
 * as a subscriber would) and compares `heapUsed + external` (typed arrays live outside the heap)
 * after a forced garbage collection before and after, with the task ids given (as the producer
 * has them) and learnt from the events. Then renders the summary and both timelines.
 *
 * ```sh
 * deno run --v8-flags=--expose-gc bench/record_memory.ts [TASKS] [given|learnt]
 * ```
 * (default 1000000 given; one mode per process, so one measurement cannot skew the next).
 * @module
 */
import { renderSummary } from "../lib/observe/render/summary.ts";
import { renderTimelineSvg } from "../lib/observe/render/timeline_svg.ts";
import { renderTimelineText } from "../lib/observe/render/timeline_text.ts";
import type { TareasEvent } from "../lib/core/events.ts";
import { RunRecord } from "../lib/observe/run_record.ts";
import { syntheticRun } from "../testing/runs.ts";

const tasks = Number(Deno.args[0] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("Run with --v8-flags=--expose-gc");

function heap(): number {
  gc?.();
  gc?.();
  const { heapUsed, external } = Deno.memoryUsage();
  return heapUsed + external;
}

const run = syntheticRun(tasks, 32);
const ids = Array.from({ length: tasks }, () => crypto.randomUUID());

/** The run's events with UUID task ids, each a fresh object and strings as from the wire. */
function* events(): Generator<TareasEvent> {
  for (const event of run.events) {
    const wire = "taskId" in event ? { ...event, taskId: ids[event.seq - 1] } : event;
    yield JSON.parse(JSON.stringify(wire));
  }
}
const mode = Deno.args[1] ?? "given";
if (mode !== "given" && mode !== "learnt") throw new Error(`Unknown mode "${mode}"`);
console.log(measure(mode === "given"));

/** One measurement, in a function of its own so nothing of it stays reachable after. */
function measure(given: boolean): string {
  const before = heap();
  let started = performance.now();
  const record = new RunRecord(given ? ids : undefined);
  let count = 0;
  for (const event of events()) {
    record.record(event);
    count++;
  }
  const recordMs = performance.now() - started;
  const after = heap();
  started = performance.now();
  const summary = renderSummary(record.summary());
  const timeline = record.timeline();
  const text = renderTimelineText(timeline, { width: 120 });
  const svg = renderTimelineSvg(timeline);
  const renderMs = performance.now() - started;
  return `${tasks} tasks, ${count} events, ids ${given ? "given" : "learnt from events"}: ` +
    `${((after - before) / tasks).toFixed(1)} bytes per task ` +
    `(${((after - before) / 2 ** 20).toFixed(1)} MiB); record ${Math.round(recordMs)} ms, ` +
    `summary + timelines ${Math.round(renderMs)} ms (${summary.length} + ${text.length} + ` +
    `${svg.length} characters); rss ${(Deno.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`;
}
