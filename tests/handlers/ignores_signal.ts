/**
 * Test handler: sleeps the task's complexity times `--time-scale`, like the built-in handler, but
 * ignores its abort signal, so it always runs to the end (and then tries to ack) whatever the
 * worker does meanwhile. At the end it writes `ignores_signal: task #<seq> ended at <epoch ms>`
 * to stderr, synchronously, for the test to know when that ack would be sent.
 * @module
 */
import { delay } from "../../lib/core/async.ts";
import type { TaskHandler } from "../../lib/core/handler.ts";

const ignoresSignal: TaskHandler = async (task, context) => {
  await delay(task.complexity * context.timeScale * 1000);
  const line = `ignores_signal: task #${task.seq} ended at ${Date.now()}\n`;
  Deno.stderr.writeSync(new TextEncoder().encode(line));
};

export default ignoresSignal;
