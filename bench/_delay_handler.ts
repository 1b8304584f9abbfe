/**
 * The handler our worker runs in the delays scenario (`--handler bench/_delay_handler.ts`): a
 * no-op that notes when each task started against the time it was due (its payload's `due`, epoch
 * ms, set by `bench/_delay_publisher.ts` as it enqueued it). At most every 50 ms while tasks
 * start, it prints `bench late <tasks so far> <epoch ms of the first start> <epoch ms of the last
 * start> <start − due of each task since the last line, ms, comma-separated>`. The warm-up task
 * (`{"warmup": true}`) is not counted. The run is timed from these lines rather than from
 * events, as the throughput runs are.
 * @module
 */
import type { TaskHandler } from "../mod.ts";
import { nowMs } from "./_util.ts";

/** What `bench/_delay_publisher.ts` enqueues. */
export type DelayPayload = { due: number } | { warmup: true };

/** How often the handler prints at most, ms. */
const LINE_EVERY_MS = 50;

let tasks = 0;
let first = 0;
let last = 0;
let lateness: string[] = [];
let pending: ReturnType<typeof setTimeout> | undefined;

function flush(): void {
  pending = undefined;
  console.log(`bench late ${tasks} ${first} ${last} ${lateness.join(",")}`);
  lateness = [];
}

const handler: TaskHandler<DelayPayload> = (task) => {
  const at = nowMs();
  const payload = task.payload;
  if (!("due" in payload)) return;
  if (tasks++ === 0) first = at;
  last = at;
  lateness.push((at - payload.due).toFixed(1));
  pending ??= setTimeout(flush, LINE_EVERY_MS);
};

export default handler;
