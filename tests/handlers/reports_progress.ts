/**
 * Test handler: reports progress slowly. A task's payload `{ "steps": [0.4, { "stage": "upload" }],
 * "holdMs": 2500 }` reports each step in turn and holds it `holdMs` (or until its signal aborts),
 * then returns `{ "steps": <how many> }` as its result. Without a payload: steps 0.4 and 0.75,
 * held 2.5 s each.
 * @module
 */
import { delay } from "../../lib/core/async.ts";
import type { TaskHandler } from "../../lib/core/handler.ts";

type Payload = { steps?: (number | Record<string, unknown>)[]; holdMs?: number } | null;

const reportsProgress: TaskHandler<Payload> = async (task, context) => {
  const steps = task.payload?.steps ?? [0.4, 0.75];
  for (const step of steps) {
    context.progress(step);
    await delay(task.payload?.holdMs ?? 2_500, context.signal);
  }
  return { steps: steps.length };
};

export default reportsProgress;
