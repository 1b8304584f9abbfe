/**
 * Test handler: returns `{ taskId, attempt, pid }` as the task's result, so that a test tells
 * which run of a task (and which worker process) a caller heard. Each run first writes
 * `returns_result: task <id> attempt <n> pid <pid> started at <epoch ms>` to stderr,
 * synchronously. A payload `{ "firstRunMs": ms }` makes the first attempt run that long (or until
 * its signal aborts); every other run returns at once.
 * @module
 */
import { delay } from "../../lib/core/async.ts";
import type { TaskHandler } from "../../lib/core/handler.ts";

const returnsResult: TaskHandler<{ firstRunMs?: number } | null> = async (task, context) => {
  const line = `returns_result: task ${task.id} attempt ${context.attempt} pid ${Deno.pid} ` +
    `started at ${Date.now()}\n`;
  Deno.stderr.writeSync(new TextEncoder().encode(line));
  const ms = task.payload?.firstRunMs ?? 0;
  if (context.attempt === 1 && ms > 0) await delay(ms, context.signal);
  return { taskId: task.id, attempt: context.attempt, pid: Deno.pid };
};

export default returnsResult;
