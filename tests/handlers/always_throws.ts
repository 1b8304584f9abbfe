/**
 * Test handler: task #1 fails on every attempt; every other task runs like the built-in handler
 * (sleeps its complexity times `--time-scale`).
 * @module
 */
import { sleepHandler, type TaskHandler } from "../../lib/core/handler.ts";

const alwaysThrows: TaskHandler = (task, context) => {
  if (task.seq === 1) throw new Error(`Task #1 always fails (attempt ${context.attempt})`);
  return sleepHandler(task, context);
};

export default alwaysThrows;
