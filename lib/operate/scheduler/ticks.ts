/**
 * The tick arithmetic of one schedule, with no clock and no broker: given what the lease's record
 * says was last dealt with, the time, and since when this scheduler leads, which ticks to fire
 * now, which were missed, and when the next one is due. Times are milliseconds since the epoch;
 * croner works in whole seconds, in the schedule's time zone.
 * @module
 */
import type { TickRecord } from "./record.ts";
import type { CompiledSchedule } from "./schedules.ts";

/**
 * A tick up to this long before a scheduler took the lease still counts as on time. A leader's
 * death hands the lease to a standby within milliseconds (the broker returns the token as soon as
 * it sees the connection close): the tick the dead leader was firing is fired by its successor,
 * not counted as missed. A tick further back was due while nobody led: it was missed.
 */
export const GRACE_MS = 1_000;

/**
 * The most ticks of one schedule fired in one commit; a leader that fell further behind (a broker
 * that stalled for a while) fires the rest in the next commits, at once.
 */
export const MAX_FIRES = 100;

/** One tick to fire. */
export interface Fire {
  /** The tick's time. */
  at: number;
  /** Whether it is a missed tick fired late (`catchUp: "once"`). */
  catchUp: boolean;
}

/** What to do for one schedule now; see {@linkcode planTicks}. */
export interface TickPlan {
  /** The ticks to fire now, oldest first. */
  fire: Fire[];
  /**
   * What the record says once they are fired: every tick up to this time has been dealt with
   * (fired or skipped). For a schedule the record did not know, the time it is first seen.
   */
  last: number;
  /** The first and last of the missed ticks that are not fired, if any. */
  skipped?: { first: number; last: number };
  /** When the next tick is due, `Infinity` when the expression never fires again. */
  next: number;
}

/** The moment {@linkcode planTicks} plans for. */
export interface PlanClock {
  /** Now. */
  now: number;
  /** When this scheduler took the lease. */
  leadSince: number;
}

/**
 * Plans one schedule's ticks. The ticks after `last` up to `now` are due: those from
 * {@linkcode GRACE_MS} before `leadSince` on are on time and fired (at most
 * {@linkcode MAX_FIRES}); older ones were missed, and the schedule's `catchUp` decides: `"skip"`
 * fires none of them, `"once"` fires the most recent one, marked. A schedule the record does not
 * know (`last` undefined) starts from now: nothing is due before its first tick.
 *
 * @example
 * ```ts
 * const [schedule] = checkSchedules([{ id: "s", cron: "* * * * * *" }], "skip");
 * const plan = planTicks(schedule, Date.parse("2026-01-01T00:00:00Z"), {
 *   now: Date.parse("2026-01-01T00:00:01.004Z"),
 *   leadSince: Date.parse("2026-01-01T00:00:00.500Z"),
 * });
 * // plan.fire: [{ at: 2026-01-01T00:00:01Z, catchUp: false }]
 * ```
 */
export function planTicks(
  schedule: Pick<CompiledSchedule, "pattern" | "catchUp">,
  last: number | undefined,
  clock: PlanClock,
): TickPlan {
  const { now, leadSince } = clock;
  const after = (ms: number) => schedule.pattern.nextRun(new Date(ms))?.getTime() ?? Infinity;
  if (last === undefined) return { fire: [], last: now, next: after(now) };
  const first = after(last);
  if (first > now) return { fire: [], last, next: first };
  const fire: Fire[] = [];
  let skipped: TickPlan["skipped"];
  let cursor = last;
  const onTime = Math.min(leadSince, now) - GRACE_MS;
  if (first < onTime) {
    // The latest tick before `onTime` (croner's previous run is strictly before the time given),
    // found without walking every missed tick: a day of a one-second schedule is 86,400.
    const lastMissed = schedule.pattern.previousRuns(1, new Date(onTime))[0]?.getTime() ?? first;
    if (schedule.catchUp === "once") {
      fire.push({ at: lastMissed, catchUp: true });
      if (first < lastMissed) {
        const before = schedule.pattern.previousRuns(1, new Date(lastMissed))[0]?.getTime();
        skipped = { first, last: before ?? first };
      }
    } else {
      skipped = { first, last: lastMissed };
    }
    cursor = lastMissed;
  }
  for (let at = after(cursor); at <= now && fire.length < MAX_FIRES; at = after(at)) {
    fire.push({ at, catchUp: false });
    cursor = at;
  }
  return { fire, last: cursor, ...(skipped ? { skipped } : {}), next: after(cursor) };
}

/** A tick of a schedule to fire. */
export interface Due extends Fire {
  /** Its schedule. */
  schedule: CompiledSchedule;
}

/** What is due now across all schedules; see {@linkcode planAll}. */
export interface Plan {
  /** The record once `due` is fired. */
  record: TickRecord;
  /** Whether `record` differs from the one given. */
  changed: boolean;
  /** The ticks to fire now. */
  due: Due[];
  /** The missed ticks dropped, by schedule id. */
  skipped: { id: string; first: number; last: number }[];
  /** When the next tick of any schedule is due. */
  next: number;
}

/**
 * Plans every schedule ({@linkcode planTicks}) from the lease's `record`. Ids of the record that
 * are not among `schedules` (another scheduler's file) are kept as they are.
 */
export function planAll(
  schedules: readonly CompiledSchedule[],
  record: TickRecord,
  clock: PlanClock,
): Plan {
  const plan: Plan = {
    record: new Map(record),
    changed: false,
    due: [],
    skipped: [],
    next: Infinity,
  };
  for (const schedule of schedules) {
    const last = record.get(schedule.id);
    const one = planTicks(schedule, last, clock);
    if (one.last !== last) {
      plan.record.set(schedule.id, one.last);
      plan.changed = true;
    }
    for (const fire of one.fire) plan.due.push({ ...fire, schedule });
    if (one.skipped) plan.skipped.push({ id: schedule.id, ...one.skipped });
    plan.next = Math.min(plan.next, one.next);
  }
  return plan;
}
