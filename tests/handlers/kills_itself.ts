/**
 * Test handler: task #1 SIGKILLs the worker process on every delivery, as a handler that crashes
 * the runtime would; every other task runs like the built-in handler. Each fatal delivery first
 * writes a line `kills_itself: attempt <attempt>` to stderr, synchronously (the kill leaves no
 * time for anything else), so that the test counts deliveries exactly from the workers' output.
 * It needs no permission (a process may signal itself): it runs under `deno task work` as is.
 * @module
 */
import { sleepHandler, type TaskHandler } from "../../lib/core/handler.ts";

const killsItself: TaskHandler = (task, context) => {
  if (task.seq !== 1) return sleepHandler(task, context);
  Deno.stderr.writeSync(new TextEncoder().encode(`kills_itself: attempt ${context.attempt}\n`));
  Deno.kill(Deno.pid, "SIGKILL");
};

export default killsItself;
