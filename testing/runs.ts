/**
 * Runs for the unit tests of the record and its renderers: a small recorded run whose every bar
 * the tests know, and synthetic runs of any size, generated lazily so a million events never sit
 * in memory at once.
 * @module
 */
import type { TareasEvent, TaskEvent } from "../lib/core/events.ts";

/** The id of task `seq` of {@linkcode RECORDED}. */
export function taskId(seq: number): string {
  return `0b7e5c1a-4f2d-4e8a-9c3b-${String(seq).padStart(12, "0")}`;
}

/** A task event of {@linkcode RECORDED}'s minute, `secondsAt` like `"02.050"`. */
export function task(
  type: TaskEvent["type"],
  worker: string,
  seq: number,
  attempt: number,
  secondsAt: string,
  extra: { durationMs?: number; reason?: string; redelivered?: boolean } = {},
): TareasEvent {
  return {
    type,
    worker,
    at: `2025-03-01T10:00:${secondsAt}Z`,
    taskId: taskId(seq),
    seq,
    attempt,
    redelivered: false,
    ...extra,
  };
}

/**
 * A recorded run: three workers with prefetch 1, ten tasks. `worker-b` is killed (SIGKILL) while
 * it runs #7; the broker redelivers #7 to `worker-c` (attempt 2, redelivered), which completes
 * it. #5 fails once on `worker-a` and its retry completes on `worker-c`; #10 is dead-lettered.
 */
export const RECORDED: readonly TareasEvent[] = [
  { type: "worker.online", worker: "worker-a", at: "2025-03-01T10:00:00.000Z" },
  { type: "worker.online", worker: "worker-b", at: "2025-03-01T10:00:00.050Z" },
  { type: "worker.online", worker: "worker-c", at: "2025-03-01T10:00:00.100Z" },
  task("task.started", "worker-a", 1, 1, "00.200"),
  task("task.started", "worker-b", 2, 1, "00.250"),
  task("task.started", "worker-c", 3, 1, "00.300"),
  task("task.completed", "worker-b", 2, 1, "01.050", { durationMs: 800 }),
  task("task.started", "worker-b", 4, 1, "01.100"),
  task("task.completed", "worker-a", 1, 1, "01.200", { durationMs: 1000 }),
  task("task.started", "worker-a", 5, 1, "01.250"),
  task("task.completed", "worker-c", 3, 1, "01.600", { durationMs: 1300 }),
  task("task.started", "worker-c", 6, 1, "01.650"),
  task("task.completed", "worker-b", 4, 1, "02.000", { durationMs: 900 }),
  task("task.started", "worker-b", 7, 1, "02.050"),
  task("task.failed", "worker-a", 5, 1, "02.400", { durationMs: 1150, reason: "boom" }),
  task("task.started", "worker-a", 8, 1, "02.450"),
  task("task.completed", "worker-c", 6, 1, "03.050", { durationMs: 1400 }),
  task("task.started", "worker-c", 7, 2, "03.100", { redelivered: true }),
  task("task.completed", "worker-a", 8, 1, "03.400", { durationMs: 950 }),
  task("task.started", "worker-a", 9, 1, "03.450"),
  task("task.completed", "worker-c", 7, 2, "04.200", { durationMs: 1100, redelivered: true }),
  task("task.started", "worker-c", 5, 2, "04.250"),
  task("task.completed", "worker-a", 9, 1, "04.500", { durationMs: 1050 }),
  task("task.started", "worker-a", 10, 1, "04.550"),
  task("task.dead", "worker-a", 10, 1, "04.900", { reason: "invalid payload" }),
  task("task.completed", "worker-c", 5, 2, "04.950", { durationMs: 700 }),
  { type: "worker.offline", worker: "worker-a", at: "2025-03-01T10:00:05.000Z" },
  { type: "worker.offline", worker: "worker-c", at: "2025-03-01T10:00:05.050Z" },
];

/** The workers of {@linkcode RECORDED}, in order of first event. */
export const WORKERS: readonly string[] = ["worker-a", "worker-b", "worker-c"];

/** Deterministic shuffle, so a test does not depend on the recorded order. */
export function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  let state = 42;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2147483648;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** What {@linkcode syntheticRun} made, to check a record of it against. */
export interface SyntheticRun {
  /** The events, in time order, generated as they are consumed. */
  events: Iterable<TareasEvent>;
  /** The id of task `i` (0-based). */
  id: (i: number) => string;
  /** How many tasks. */
  tasks: number;
  /** How many tasks are dead-lettered: every 1000th. */
  dead: number;
  /** How many tasks fail once, then complete on a second attempt: every 100th but the dead. */
  retried: number;
  /** How many tasks complete twice: every 5000th, on a second worker. */
  duplicates: number;
}

/**
 * A run of `tasks` tasks over `workers` workers, one task at a time per worker, 10 ms each: every
 * 100th task fails once and is retried on the next worker, every 1000th is dead-lettered (not
 * retried), every 5000th completes twice. About two events per task.
 */
export function syntheticRun(tasks: number, workers = 16): SyntheticRun {
  const id = (i: number) => `task-${String(i).padStart(8, "0")}`;
  const startMs = Date.parse("2025-03-01T10:00:00.000Z");
  const counted = { dead: 0, retried: 0, duplicates: 0 };
  for (let i = 0; i < tasks; i++) {
    if (i % 1000 === 999) counted.dead++;
    else if (i % 100 === 99) counted.retried++;
    else if (i % 5000 === 4998) counted.duplicates++;
  }
  function* events(): Generator<TareasEvent> {
    const name = (w: number) => `worker-${w % workers}`;
    for (let w = 0; w < workers; w++) {
      yield { type: "worker.online", worker: name(w), at: new Date(startMs).toISOString() };
    }
    // Timestamps repeat for a round of `workers` tasks: format each once.
    const stamps = new Map<number, string>();
    const at = (ms: number) => {
      let stamp = stamps.get(ms);
      if (stamp === undefined) {
        if (stamps.size > 64) stamps.clear();
        stamp = new Date(ms).toISOString();
        stamps.set(ms, stamp);
      }
      return stamp;
    };
    for (let i = 0; i < tasks; i++) {
      const w = i % workers;
      const t = startMs + Math.floor(i / workers) * 10;
      const base = { taskId: id(i), seq: i + 1, attempt: 1, redelivered: false };
      yield { type: "task.started", worker: name(w), at: at(t), ...base };
      if (i % 1000 === 999) {
        yield { type: "task.dead", worker: name(w), at: at(t + 9), ...base, reason: "invalid" };
      } else if (i % 100 === 99) {
        yield { type: "task.failed", worker: name(w), at: at(t + 4), ...base, reason: "boom" };
        yield { type: "task.completed", worker: name(w + 1), at: at(t + 9), ...base, attempt: 2 };
      } else {
        yield { type: "task.completed", worker: name(w), at: at(t + 9), ...base, durationMs: 9 };
        if (i % 5000 === 4998) {
          yield { type: "task.completed", worker: name(w + 1), at: at(t + 9), ...base };
        }
      }
    }
  }
  return { events: { [Symbol.iterator]: events }, id, tasks, ...counted };
}
