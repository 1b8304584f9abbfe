/**
 * Test handler: task #1 never settles and ignores its abort signal (only the task timeout can get
 * rid of it); every other task runs like the built-in handler.
 * @module
 */
import { sleepHandler, type TaskHandler } from "../../lib/core/handler.ts";

const hangs: TaskHandler = (task, context) => {
  if (task.seq === 1) return new Promise<never>(() => {});
  return sleepHandler(task, context);
};

export default hangs;
