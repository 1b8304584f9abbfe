/**
 * The handler our workers run in the throughput scenarios (`--handler bench/_done_handler.ts`):
 * a no-op that counts its tasks, and on a task whose payload is `{"stop": true}` (published after
 * all the others, one per worker) prints `bench done <tasks> <epoch ms of the first> <epoch ms
 * of the last>` as the floor's consumer does, then holds that task until the worker is stopped,
 * so that the other stop tasks go to the other workers. The run is timed from these reports, not
 * from events: the floor has no listener of every completion either.
 * @module
 */
import type { TaskHandler } from "../mod.ts";
import { nowMs } from "./_util.ts";

let tasks = 0;
let first = 0;
let last = 0;
const stopped = Promise.withResolvers<void>();
Deno.addSignalListener("SIGTERM", () => stopped.resolve());

const handler: TaskHandler<{ stop?: boolean } | null> = (task) => {
  if (task.payload?.stop) {
    console.log(`bench done ${tasks} ${first} ${last}`);
    return stopped.promise;
  }
  if (tasks++ === 0) first = nowMs();
  last = nowMs();
};

export default handler;
