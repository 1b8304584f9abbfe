/**
 * Test handler module of named tasks for the metrics test: `resize` and `email` run like the
 * built-in handler (sleep their complexity times `--time-scale`), except that `email` task #1
 * fails its first attempt (retried, then completes) and `email` task #2 fails for good
 * (dead-lettered after one run). A task of any other name is dead-lettered by the worker.
 * @module
 */
import { PermanentError } from "../../lib/core/errors.ts";
import { sleepHandler, type TaskHandler } from "../../lib/core/handler.ts";

const email: TaskHandler = (task, context) => {
  if (task.seq === 1 && context.attempt === 1) throw new Error("Email #1 fails its first attempt");
  if (task.seq === 2) throw new PermanentError("Email #2 cannot be sent");
  return sleepHandler(task, context);
};

export default { resize: sleepHandler, email };
