/**
 * The losses a verify run causes: a SIGKILL of a busy worker (a new one started in its place),
 * and the kill -9 of the broker or the queue leader's node, restarted in the background.
 * @module
 */
import { errorMessage, TareasError } from "../../core/errors.ts";
import { printable } from "../../core/text.ts";
import type { RunBroker } from "./broker.ts";
import type { Fault } from "./types.ts";
import type { RunState } from "./_state.ts";
import type { WorkerPool } from "./workers.ts";

/** How much of a task's work must be left for a SIGKILL to land in its middle; see `killOne`. */
const MIN_LEFT_MS = 25;

/** Options of {@linkcode killOne} and {@linkcode killBroker}. */
export interface FaultOptions {
  /** The run's workers. */
  pool: WorkerPool;
  /** Hears a line of what happens. */
  say: (line: string) => void;
}

/**
 * SIGKILLs a random worker in the middle of a task and starts another; false when none is. A
 * task is in the middle when its event says it started and its work has at least
 * {@linkcode MIN_LEFT_MS} to go: the events come up to 10 ms late, and a kill that lands after
 * the task's ack kills nothing in hand. `kills` is how many the run makes in all.
 */
export function killOne(state: RunState, options: FaultOptions & { kills: number }): boolean {
  const { pool, say } = options;
  const now = Date.now();
  const busy = pool.alive.filter((worker) => {
    const view = state.views.get(worker.name);
    if (!view?.online) return false;
    return [...view.open].some(([id, started]) =>
      started + (state.workMs.get(id) ?? 0) - now >= MIN_LEFT_MS
    );
  });
  const victim = busy[Math.floor(Math.random() * busy.length)];
  if (victim === undefined) return false;
  const view = state.views.get(victim.name)!;
  const inHand = [...view.open.keys()];
  const at = pool.kill(victim);
  view.open.clear();
  state.faults.push({ kind: "worker", worker: victim.name, at });
  state.kills.push({ worker: victim.name, atMs: at - state.startedAt, inHand });
  const next = pool.start();
  const seqs = inHand.map((id) => `#${state.seqOf(id)}`).join(", ");
  say(
    `✗ SIGKILL ${victim.name} with task ${seqs} in hand (kill ${state.kills.length} of ` +
      `${options.kills}); starting ${next.name}`,
  );
  return true;
}

/**
 * Kills the broker (or the leader's node) of `queue` with kill -9, then restarts it, in the
 * background: `state.faultRunning` until it is back.
 */
export function killBroker(
  state: RunState,
  options: FaultOptions & { broker: RunBroker; queue: string },
): void {
  const { pool, say, broker } = options;
  const fault = broker.fault!;
  state.faultRunning = true;
  say(`✗ kill -9 of ${whatOf(broker)}, after syncing its quorum queue metadata to disk`);
  (async () => {
    const from = Date.now();
    const node = await fault.kill(options.queue);
    const at = Date.now();
    const record: Fault = { kind: fault.kind, node, from, at };
    state.faults.push(record);
    // Its workers' tasks went back to the queue: what the events said they held is gone.
    for (const worker of pool.alive) state.views.get(worker.name)?.open.clear();
    say(`${printable(node)} killed; restarting it`);
    await fault.restart();
    record.until = Date.now();
    const restartMs = record.until - at;
    state.brokerKill = { kind: fault.kind, node, atMs: at - state.startedAt, restartMs };
    say(`${printable(node)} back after ${(restartMs / 1000).toFixed(1)} s`);
  })().then(() => {
    state.faultDone = true;
    state.faultRunning = false;
    state.lastActivity = Date.now();
    state.poke();
  }, (error) => {
    state.failure ??= new TareasError(`The broker kill failed: ${errorMessage(error)}`, {
      cause: error,
    });
    state.poke();
  });
}

/** "the broker", or "the queue leader's node". */
export function whatOf(broker: RunBroker): string {
  return broker.fault?.kind === "node" ? "the queue leader's node" : "the broker";
}
