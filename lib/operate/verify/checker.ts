/**
 * The judge of a verify run: from what was published, the results heard, the workers' events and
 * the faults verify caused, which tasks were lost, which ran more than once and why, and how long
 * a killed worker's tasks took to start elsewhere. No broker here: everything it judges is data.
 *
 * A task's *runs* are read from its events: a `task.started` opens one on its worker, and the
 * `task.completed`, `task.failed` or `task.dead` of the same worker and attempt closes it (a run
 * that ended within a worker's 10 ms events window has only its completion, whose `durationMs`
 * dates its start). A task run more than once is *explained* when each run but the one that
 * completed it was cut short by a loss verify can name on that run's worker: a SIGKILL, the
 * broker's (or the queue leader's node's) kill -9, or a reconnect. A run that had completed is
 * explained too when its worker was killed within {@linkcode ACK_WINDOW_MS} after: its ack had not
 * reached the broker, which redelivered the task (delivery is at least once).
 * @module
 */
import type { TaskEvent } from "../../core/events.ts";
import type { TaskResult } from "../../core/results.ts";
import { type Cut, cutsOf, explain } from "./_explain.ts";
import type { CheckInput, Duplicate, Published, Run, Unfinished, Verdict } from "./types.ts";

export { ACK_WINDOW_MS, OUTAGE_GRACE_MS } from "./_explain.ts";
export type {
  Census,
  CheckInput,
  Duplicate,
  Fault,
  Published,
  Run,
  Unfinished,
  Verdict,
} from "./types.ts";

/** Judges a run; see the module documentation. */
export function check(input: CheckInput): Verdict {
  const results = resultsOf(input);
  const taskEvents = input.events.filter((event): event is TaskEvent =>
    event.type.startsWith("task.")
  );
  const unexpected = unexpectedOf(input.published, results, taskEvents);
  const cuts = cutsOf(input.faults, input.events);
  const reruns = rerunsOf(input.published, runsOf(taskEvents), cuts);
  const outcomes = outcomesOf(input, results, retryingTasks(taskEvents));
  const { lost, dead, notRun, unconfirmed } = outcomes;
  return {
    published: input.published.length,
    confirmed: input.published.filter((task) => input.confirmed.has(task.taskId)).length,
    completed: outcomes.completed.length,
    lost,
    dead,
    notRun,
    unconfirmed,
    unexpected: [...unexpected],
    ...reruns,
    reconnects: cuts.filter((cut) => cut.fault === "reconnect").map(({ worker, at }) => ({
      worker,
      at,
    })),
    ok: lost.length === 0 && dead.length === 0 && notRun.length === 0 &&
      unconfirmed.length === 0 && unexpected.size === 0 &&
      reruns.duplicates.every((duplicate) => duplicate.explained),
  };
}

/** The results heard and those left in the reply queue, the first of each task. */
function resultsOf(input: CheckInput): Map<string, TaskResult> {
  const results = new Map<string, TaskResult>();
  for (const result of [...input.results, ...(input.census?.results ?? [])]) {
    if (!results.has(result.taskId)) results.set(result.taskId, result);
  }
  return results;
}

/** Ids of the completions (results or events) of tasks verify never published. */
function unexpectedOf(
  published: readonly Published[],
  results: ReadonlyMap<string, TaskResult>,
  taskEvents: readonly TaskEvent[],
): Set<string> {
  const expected = new Set(published.map((task) => task.taskId));
  const unexpected = new Set<string>();
  for (const id of results.keys()) if (!expected.has(id)) unexpected.add(id);
  for (const event of taskEvents) {
    if (event.type === "task.completed" && !expected.has(event.taskId)) {
      unexpected.add(event.taskId);
    }
  }
  return unexpected;
}

/** The tasks run more than once, explained, and the times from each cut to the next start. */
function rerunsOf(
  published: readonly Published[],
  runs: ReadonlyMap<string, Run[]>,
  cuts: Cut[],
): Pick<Verdict, "duplicates" | "redelivered" | "redeliveryMs" | "brokerRedeliveryMs"> {
  const duplicates: Duplicate[] = [];
  const redeliveryMs: number[] = [];
  const brokerRedeliveryMs: number[] = [];
  let redelivered = 0;
  for (const task of published) {
    const list = runs.get(task.taskId) ?? [];
    if (list.some((run) => run.redelivered)) redelivered++;
    if (list.length < 2) continue;
    const duplicate = explain(task, list, cuts, (cut, next) => {
      if (cut.fault === "worker") redeliveryMs.push(next.startedAt - cut.at);
      if (cut.fault === "broker") brokerRedeliveryMs.push(next.startedAt - cut.at);
    });
    duplicates.push(duplicate);
  }
  return { duplicates, redelivered, redeliveryMs, brokerRedeliveryMs };
}

/** How each published task ended: completed, dead, not run, lost or unconfirmed. */
function outcomesOf(
  input: CheckInput,
  results: ReadonlyMap<string, TaskResult>,
  retrying: ReadonlyMap<string, string>,
): Pick<Verdict, "lost" | "dead" | "notRun" | "unconfirmed"> & { completed: string[] } {
  const completed: string[] = [];
  const dead: Unfinished[] = [];
  const notRun: Unfinished[] = [];
  const lost: Published[] = [];
  const unconfirmed: Unfinished[] = [];
  for (const task of input.published) {
    const result = results.get(task.taskId);
    if (!input.confirmed.has(task.taskId)) {
      // A task whose confirm was lost may have been stored all the same: judged by its result.
      if (result?.status !== "completed") {
        unconfirmed.push({
          ...task,
          reason: input.refused?.get(task.taskId) ?? "not confirmed by the broker",
        });
      } else {
        completed.push(task.taskId);
      }
      continue;
    }
    if (result?.status === "completed") completed.push(task.taskId);
    else if (result?.status === "dead") dead.push({ ...task, reason: result.reason });
    else if (input.census?.deadLettered.has(task.taskId)) {
      dead.push({ ...task, reason: input.census.deadLettered.get(task.taskId)! });
    } else if (input.census?.queued.has(task.taskId)) {
      notRun.push({ ...task, reason: "still in the work queue" });
    } else if (retrying.has(task.taskId)) {
      notRun.push({ ...task, reason: `waiting for a retry: ${retrying.get(task.taskId)}` });
    } else lost.push(task);
  }
  return { completed, dead, notRun, lost, unconfirmed };
}

/** Each task's runs, in the order they started; see the module documentation. */
export function runsOf(events: readonly TaskEvent[]): Map<string, Run[]> {
  const runs = new Map<string, Run[]>();
  for (const event of events) {
    if (event.type === "task.progress") continue;
    const at = Date.parse(event.at);
    if (!Number.isFinite(at)) continue;
    let list = runs.get(event.taskId);
    if (list === undefined) runs.set(event.taskId, list = []);
    const { worker, attempt, redelivered } = event;
    if (event.type === "task.started") {
      list.push({ worker, attempt, redelivered, startedAt: at });
      continue;
    }
    const outcome = event.type === "task.completed"
      ? "completed"
      : event.type === "task.failed"
      ? "failed"
      : "dead";
    const open = list.findLast((run) =>
      run.worker === worker && run.attempt === attempt && run.outcome === undefined
    );
    const ending = {
      endedAt: at,
      outcome,
      ...(event.reason === undefined ? {} : { reason: event.reason }),
    } as const;
    if (open !== undefined) {
      Object.assign(open, ending);
    } else if (event.durationMs !== undefined) {
      // Its task.started was withdrawn (the run ended within the events window).
      list.push({ worker, attempt, redelivered, startedAt: at - event.durationMs, ...ending });
    }
    // A task.dead without a run: dead-lettered without running (a count of its runs has no use).
  }
  for (const list of runs.values()) list.sort((a, b) => a.startedAt - b.startedAt);
  return runs;
}

/** Tasks whose last event is a failed attempt (a retry is waiting in the delays' ladder): reason by id. */
function retryingTasks(events: readonly TaskEvent[]): Map<string, string> {
  const last = new Map<string, TaskEvent>();
  for (const event of events) if (event.type !== "task.progress") last.set(event.taskId, event);
  const retrying = new Map<string, string>();
  for (const [id, event] of last) {
    if (event.type === "task.failed") retrying.set(id, event.reason ?? "no reason");
  }
  return retrying;
}

/**
 * The value at percentile `p` (0 to 100) of `values`, by the nearest-rank method; undefined for
 * none.
 *
 * @example
 * ```ts
 * percentile([5, 1, 3], 50); // 3
 * ```
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}
