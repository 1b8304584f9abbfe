/**
 * Why a task ran more than once (see `checker.ts`): what cut each worker's runs short, and
 * whether such a cut explains each run but the one that completed the task.
 * @module
 */
import type { TareasEvent } from "../../core/events.ts";
import type { Duplicate, Fault, Published, Run } from "./types.ts";

/**
 * How long after a run's completion a SIGKILL of its worker still explains a second run: the ack
 * goes out in the event loop's turn after the completion (measured here: within 2 ms), so a second
 * run after a kill this long after its completion means the broker got the completion's ack and
 * delivered the task again all the same, which would be a bug. Generous for a loaded machine.
 */
export const ACK_WINDOW_MS = 1_000;

/** Something that cut a worker's runs short. */
export interface Cut {
  worker: string;
  at: number;
  /** What to say: "it was SIGKILLed", "the broker was killed", … */
  what: string;
  fault: "worker" | "broker" | "reconnect" | "outage";
  /** For an outage (the broker, or the leader's node, down): until when, in epoch ms. */
  until?: number;
}

/**
 * How long after a killed node took connections again a run that failed is still put down to its
 * loss (a publish nacked or a channel closed while it was down): the workers' reconnects.
 */
export const OUTAGE_GRACE_MS = 10_000;

/**
 * What cut workers' runs short: each SIGKILL; each kill of the broker (or the leader's node) for
 * every worker that came online again after it (it had lost its connection); and any other
 * reconnect, which verify did not cause.
 */
export function cutsOf(faults: readonly Fault[], events: readonly TareasEvent[]): Cut[] {
  const cuts: Cut[] = [];
  const brokerKills = faults.filter((fault) => fault.kind !== "worker").map((fault) =>
    fault as Extract<Fault, { kind: "broker" | "node" }>
  );
  for (const fault of faults) {
    if (fault.kind === "worker") {
      cuts.push({ worker: fault.worker, at: fault.at, what: "it was SIGKILLed", fault: "worker" });
    } else {
      cuts.push({
        worker: "",
        at: fault.from ?? fault.at,
        until: (fault.until ?? Infinity) + OUTAGE_GRACE_MS,
        what: `${fault.kind === "broker" ? "the broker" : `node ${fault.node}`} was killed`,
        fault: "outage",
      });
    }
  }
  const onlines = new Map<string, number[]>();
  for (const event of events) {
    if (event.type !== "worker.online") continue;
    const at = Date.parse(event.at);
    if (!Number.isFinite(at)) continue;
    const list = onlines.get(event.worker) ?? [];
    list.push(at);
    onlines.set(event.worker, list);
  }
  for (const [worker, times] of onlines) {
    times.sort((a, b) => a - b);
    for (let i = 1; i < times.length; i++) {
      const previous = times[i - 1]!;
      const at = times[i]!;
      const fault = brokerKills.find((kill) => kill.at >= previous && kill.at <= at);
      if (fault !== undefined) {
        const what = fault.kind === "broker"
          ? "the broker was killed"
          : `node ${fault.node}, the queue's leader, was killed`;
        cuts.push({ worker, at: fault.at, what, fault: "broker" });
      } else {
        cuts.push({
          worker,
          at,
          what: "it lost its connection (not caused by verify)",
          fault: "reconnect",
        });
      }
    }
  }
  return cuts.sort((a, b) => a.at - b.at);
}

/** Explains a task's runs; `measured` hears each cut followed by the run that came after it. */
export function explain(
  task: Published,
  runs: Run[],
  cuts: Cut[],
  measured: (cut: Cut, next: Run) => void,
): Duplicate {
  const final = runs.findLastIndex((run) => run.outcome === "completed");
  const why: string[] = [];
  let explained = true;
  runs.forEach((run, index) => {
    if (index === final) return;
    const next = runs[index + 1];
    const reason = explainRun(run, next, cuts, measured);
    if (reason.explained) why.push(reason.line);
    else {
      explained = false;
      why.push(`NOT EXPLAINED: ${reason.line}`);
    }
  });
  return { ...task, runs, explained, why };
}

function explainRun(
  run: Run,
  next: Run | undefined,
  cuts: Cut[],
  measured: (cut: Cut, next: Run) => void,
): { explained: boolean; line: string } {
  const on = `on ${run.worker} (attempt ${run.attempt})`;
  if (run.outcome === "failed") {
    const reason = run.reason ?? "no reason";
    const ended = run.endedAt ?? run.startedAt;
    const outage = cuts.find((cut) =>
      cut.fault === "outage" && ended >= cut.at && ended <= (cut.until ?? cut.at)
    );
    if (outage !== undefined) {
      return { explained: true, line: `failed ${on} while ${outage.what}: ${reason}` };
    }
    return { explained: false, line: `its handler failed ${on}: ${reason}` };
  }
  if (run.outcome === "dead") {
    return { explained: false, line: `dead-lettered ${on}: ${run.reason ?? "no reason"}` };
  }
  const cut = cuts.find((cut) => cut.worker === run.worker && cut.at >= run.startedAt);
  if (cut === undefined) {
    return {
      explained: false,
      line: `${run.outcome === "completed" ? "completed" : "started"} ${on}, then run again ` +
        "with no kill or lost connection of that worker to explain it",
    };
  }
  // A rerun that started before the kill ran at the same time as this run: no kill explains it.
  if (next !== undefined && cut.fault !== "reconnect" && next.startedAt < cut.at) {
    return {
      explained: false,
      line: `started ${on} and again on ${next.worker} before ${cut.what}: two runs at once`,
    };
  }
  if (run.outcome === undefined) {
    if (next !== undefined) measured(cut, next);
    return { explained: true, line: `in hand ${on} when ${cut.what}` };
  }
  const before = cut.at - (run.endedAt ?? run.startedAt);
  if (before <= ACK_WINDOW_MS) {
    if (next !== undefined) measured(cut, next);
    return {
      explained: true,
      line: `completed ${on} ${before} ms before ${cut.what}: its ack had not reached the broker`,
    };
  }
  return {
    explained: false,
    line:
      `completed ${on} ${before} ms before ${cut.what}, long enough for its ack, then run again`,
  };
}
