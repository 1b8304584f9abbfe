/**
 * Test handler module that `deno task work` must refuse: its default export is an object of
 * handlers by task name, one of which is not a function.
 * @module
 */
import type { Task } from "../../lib/core/task.ts";

export default {
  resize: (task: Task) => ({ resized: task.payload }),
  email: "not a function",
};
