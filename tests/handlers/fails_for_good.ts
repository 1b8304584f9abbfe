/**
 * Test handler: task #1 fails for good (throws `PermanentError`); every other task runs like the
 * built-in handler (sleeps its complexity times `--time-scale`).
 * @module
 */
import { PermanentError } from "../../lib/core/errors.ts";
import { sleepHandler, type TaskHandler } from "../../lib/core/handler.ts";

const failsForGood: TaskHandler = (task, context) => {
  if (task.seq === 1) {
    throw new PermanentError(`Task #1 cannot succeed (attempt ${context.attempt})`);
  }
  return sleepHandler(task, context);
};

export default failsForGood;
