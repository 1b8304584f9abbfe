/**
 * Test handler: task #1 SIGKILLs the worker process on every delivery, as a handler that crashes
 * the runtime would; every other task runs like the built-in handler. When `TAREAS_TEST_RECORD`
 * names a file, each fatal delivery first appends a line `<pid> <attempt>` to it (synchronously:
 * the kill leaves no time for anything else), so the test can count deliveries exactly.
 * @module
 */
import { sleepHandler, type TaskHandler } from "../../lib/handler.ts";

const killsItself: TaskHandler = (task, context) => {
  if (task.seq !== 1) return sleepHandler(task, context);
  const record = Deno.env.get("TAREAS_TEST_RECORD");
  if (record) {
    Deno.writeTextFileSync(record, `${Deno.pid} ${context.attempt}\n`, { append: true });
  }
  Deno.kill(Deno.pid, "SIGKILL");
};

export default killsItself;
