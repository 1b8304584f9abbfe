/**
 * Test handler module of named tasks: its default export is an object of handlers by task name.
 * `resize` returns `{ resized: <payload> }`, `email` returns `{ sent: <payload> }`; a task of any
 * other name is dead-lettered by the worker (`no handler for task "x"`).
 * @module
 */
import type { Task } from "../../lib/core/task.ts";

export default {
  resize: (task: Task) => ({ resized: task.payload }),
  email: (task: Task) => ({ sent: task.payload }),
};
