/**
 * Test handler: task #1 returns at once, and its worker is SIGKILLed as soon as the handler's turn
 * is over: after the worker has written what it writes at the end of a task (its ack), and long
 * before any events window closes. Every other task runs like the built-in handler.
 * @module
 */
import { sleepHandler, type TaskHandler } from "../../lib/core/handler.ts";

const diesAfterReturn: TaskHandler = (task, context) => {
  if (task.seq !== 1) return sleepHandler(task, context);
  setTimeout(() => Deno.kill(Deno.pid, "SIGKILL"), 0);
};

export default diesAfterReturn;
