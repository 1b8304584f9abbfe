/**
 * Test handler: sleeps the task's complexity times `--time-scale`, like the built-in handler, but
 * ignores its abort signal, so it always runs to the end (and then tries to ack) whatever the
 * worker does meanwhile.
 * @module
 */
import { delay } from "../../lib/async.ts";
import type { TaskHandler } from "../../lib/handler.ts";

const ignoresSignal: TaskHandler = (task, context) =>
  delay(task.complexity * context.timeScale * 1000);

export default ignoresSignal;
