/**
 * The handler module verify's workers run (`deno task work --handler` with this file): it sleeps
 * for the time its task's payload names, or until its signal aborts. Nothing else: what verify
 * checks is what tareas does around a handler, not the handler.
 * @module
 */
import { delay } from "../../core/async.ts";
import type { TaskContext } from "../../core/handler.ts";
import type { Task } from "../../core/task.ts";
import { workMs } from "./work.ts";

/** Runs one verify task: sleeps `payload.ms`. */
export default function verifyWork(task: Task, context: TaskContext): Promise<void> {
  return delay(workMs(task.payload), context.signal);
}
