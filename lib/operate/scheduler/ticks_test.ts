import assert from "node:assert/strict";
import { type CatchUp, checkSchedules, type Schedule } from "./schedules.ts";
import { GRACE_MS, MAX_FIRES, planAll, planTicks, type TickPlan } from "./ticks.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** One compiled schedule. */
function schedule(cron: string, extra: Partial<Schedule> & { catchUp?: CatchUp } = {}) {
  const { catchUp = "skip", ...fields } = extra;
  return checkSchedules([{ id: "s", cron, ...fields }], catchUp)[0]!;
}

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

/** A plan with ISO times, to compare with what a person reads. */
function readable(plan: TickPlan) {
  return {
    fire: plan.fire.map((f) => `${iso(f.at)}${f.catchUp ? " catch-up" : ""}`),
    last: iso(plan.last),
    ...(plan.skipped ? { skipped: [iso(plan.skipped.first), iso(plan.skipped.last)] } : {}),
    next: Number.isFinite(plan.next) ? iso(plan.next) : "never",
  };
}

Deno.test({
  name: "a leader fires the tick that came since the record, and waits for the next one",
  ...options,
  fn() {
    const everySecond = schedule("* * * * * *");
    const plan = planTicks(everySecond, at("2026-01-01T00:00:00Z"), {
      now: at("2026-01-01T00:00:01.004Z"),
      leadSince: at("2025-12-31T00:00:00Z"),
    });
    assert.deepEqual(readable(plan), {
      fire: ["2026-01-01T00:00:01.000Z"],
      last: "2026-01-01T00:00:01.000Z",
      next: "2026-01-01T00:00:02.000Z",
    });
    const early = planTicks(everySecond, at("2026-01-01T00:00:01Z"), {
      now: at("2026-01-01T00:00:01.999Z"),
      leadSince: at("2025-12-31T00:00:00Z"),
    });
    assert.deepEqual(readable(early), {
      fire: [],
      last: "2026-01-01T00:00:01.000Z",
      next: "2026-01-01T00:00:02.000Z",
    });
  },
});

Deno.test({
  name: "a schedule the record does not know starts from now: nothing before its first tick",
  ...options,
  fn() {
    const plan = planTicks(schedule("*/5 * * * *"), undefined, {
      now: at("2026-01-01T00:07:30Z"),
      leadSince: at("2026-01-01T00:00:00Z"),
    });
    assert.deepEqual(readable(plan), {
      fire: [],
      last: "2026-01-01T00:07:30.000Z",
      next: "2026-01-01T00:10:00.000Z",
    });
  },
});

Deno.test({
  name: "the tick a dead leader was firing is on time for its successor, within the grace",
  ...options,
  fn() {
    // The leader died at 12:00:00.002, before its commit; the standby got the lease 5 ms later.
    const plan = planTicks(schedule("* * * * * *"), at("2026-01-01T11:59:59Z"), {
      now: at("2026-01-01T12:00:00.008Z"),
      leadSince: at("2026-01-01T12:00:00.007Z"),
    });
    assert.deepEqual(readable(plan).fire, ["2026-01-01T12:00:00.000Z"]);
    // One grace later, that tick was missed.
    const late = planTicks(schedule("* * * * * *"), at("2026-01-01T11:59:59Z"), {
      now: at("2026-01-01T12:00:00.600Z") + GRACE_MS,
      leadSince: at("2026-01-01T12:00:00.500Z") + GRACE_MS,
    });
    assert.deepEqual(readable(late), {
      fire: ["2026-01-01T12:00:01.000Z"],
      last: "2026-01-01T12:00:01.000Z",
      skipped: ["2026-01-01T12:00:00.000Z", "2026-01-01T12:00:00.000Z"],
      next: "2026-01-01T12:00:02.000Z",
    });
  },
});

Deno.test({
  name: 'missed ticks: "skip" drops them all, "once" fires the most recent one, marked',
  ...options,
  fn() {
    // No leader from 00:00:00 until 00:00:10.5 (a broker restart): ticks 1 to 9 were missed,
    // tick 10 is within the grace of the new leader.
    const clock = {
      now: at("2026-01-01T00:00:10.600Z"),
      leadSince: at("2026-01-01T00:00:10.500Z"),
    };
    const last = at("2026-01-01T00:00:00Z");
    assert.deepEqual(readable(planTicks(schedule("* * * * * *"), last, clock)), {
      fire: ["2026-01-01T00:00:10.000Z"],
      last: "2026-01-01T00:00:10.000Z",
      skipped: ["2026-01-01T00:00:01.000Z", "2026-01-01T00:00:09.000Z"],
      next: "2026-01-01T00:00:11.000Z",
    });
    const once = schedule("* * * * * *", { catchUp: "once" });
    assert.deepEqual(readable(planTicks(once, last, clock)), {
      fire: ["2026-01-01T00:00:09.000Z catch-up", "2026-01-01T00:00:10.000Z"],
      last: "2026-01-01T00:00:10.000Z",
      skipped: ["2026-01-01T00:00:01.000Z", "2026-01-01T00:00:08.000Z"],
      next: "2026-01-01T00:00:11.000Z",
    });
  },
});

Deno.test({
  name: 'a single missed tick: "skip" records it as dealt with, "once" fires it late',
  ...options,
  fn() {
    // An every-minute schedule whose 00:01 tick came while the broker was down.
    const clock = { now: at("2026-01-01T00:01:30.100Z"), leadSince: at("2026-01-01T00:01:30Z") };
    const last = at("2026-01-01T00:00:00Z");
    assert.deepEqual(readable(planTicks(schedule("* * * * *"), last, clock)), {
      fire: [],
      last: "2026-01-01T00:01:00.000Z",
      skipped: ["2026-01-01T00:01:00.000Z", "2026-01-01T00:01:00.000Z"],
      next: "2026-01-01T00:02:00.000Z",
    });
    assert.deepEqual(readable(planTicks(schedule("* * * * *", { catchUp: "once" }), last, clock)), {
      fire: ["2026-01-01T00:01:00.000Z catch-up"],
      last: "2026-01-01T00:01:00.000Z",
      next: "2026-01-01T00:02:00.000Z",
    });
  },
});

Deno.test({
  name: "a leader far behind fires at most MAX_FIRES ticks per commit, and the next is due at once",
  ...options,
  fn() {
    const plan = planTicks(schedule("* * * * * *"), at("2026-01-01T00:00:00Z"), {
      now: at("2026-01-01T00:10:00Z"),
      leadSince: at("2025-12-31T00:00:00Z"),
    });
    assert.equal(plan.fire.length, MAX_FIRES);
    assert.equal(iso(plan.last), "2026-01-01T00:01:40.000Z");
    assert.equal(iso(plan.next), "2026-01-01T00:01:41.000Z");
  },
});

Deno.test({
  name: "a year of missed one-second ticks is planned without walking them",
  ...options,
  fn() {
    const started = performance.now();
    const plan = planTicks(
      schedule("* * * * * *", { catchUp: "once" }),
      at("2025-01-01T00:00:00Z"),
      {
        now: at("2026-01-01T00:00:00.300Z"),
        leadSince: at("2026-01-01T00:00:00.200Z"),
      },
    );
    const ms = performance.now() - started;
    assert.deepEqual(readable(plan).fire, [
      "2025-12-31T23:59:59.000Z catch-up",
      "2026-01-01T00:00:00.000Z",
    ]);
    assert.ok(ms < 100, `planned in ${ms.toFixed(1)} ms`);
  },
});

Deno.test({
  name: "a time zone's local time is kept across daylight saving time",
  ...options,
  fn() {
    // 07:00 in Madrid: 06:00 UTC in winter (CET), 05:00 UTC from 29 March 2026 (CEST).
    const daily = schedule("0 7 * * *", { timezone: "Europe/Madrid" });
    const plan = planTicks(daily, at("2026-03-28T06:00:00Z"), {
      now: at("2026-03-29T05:00:00.010Z"),
      leadSince: at("2026-03-01T00:00:00Z"),
    });
    assert.deepEqual(readable(plan), {
      fire: ["2026-03-29T05:00:00.000Z"],
      last: "2026-03-29T05:00:00.000Z",
      next: "2026-03-30T05:00:00.000Z",
    });
  },
});

Deno.test({
  name: "DST: a fixed time in the skipped hour fires right after it, in the repeated hour once",
  ...options,
  fn() {
    const leadSince = at("2026-01-01T00:00:00Z");
    const ticks = (cron: string, from: string, to: string) => {
      const fired: string[] = [];
      let last = at(from);
      const now = at(to);
      const s = schedule(cron, { timezone: "Europe/Madrid" });
      for (let plan = planTicks(s, last, { now, leadSince }); plan.fire.length > 0;) {
        fired.push(...plan.fire.map((f) => iso(f.at)));
        last = plan.last;
        plan = planTicks(s, last, { now, leadSince });
      }
      return fired;
    };
    // 29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    assert.deepEqual(ticks("30 2 * * *", "2026-03-28T00:00:00Z", "2026-03-30T12:00:00Z"), [
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:00:00.000Z", // 03:00 CEST, right after the gap
      "2026-03-30T00:30:00.000Z",
    ]);
    // 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice, fires once.
    assert.deepEqual(ticks("30 2 * * *", "2026-10-24T00:00:00Z", "2026-10-26T12:00:00Z"), [
      "2026-10-24T00:30:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30:00.000Z",
    ]);
    // An interval keeps its real interval through the repeated hour: every 30 minutes.
    assert.deepEqual(ticks("*/30 * * * *", "2026-10-24T23:45:00Z", "2026-10-25T02:10:00Z"), [
      "2026-10-25T00:00:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-25T01:00:00.000Z",
      "2026-10-25T01:30:00.000Z",
      "2026-10-25T02:00:00.000Z",
    ]);
  },
});

Deno.test({
  name: "all schedules planned from one record: ids of other schedulers' files are kept",
  ...options,
  fn() {
    const schedules = checkSchedules([
      { id: "a", cron: "* * * * * *" },
      { id: "b", cron: "*/10 * * * * *" },
    ], "skip");
    const record = new Map([["a", at("2026-01-01T00:00:00Z")], ["other", 5]]);
    const clock = { now: at("2026-01-01T00:00:01.002Z"), leadSince: at("2026-01-01T00:00:00Z") };
    const plan = planAll(schedules, record, clock);
    assert.deepEqual(plan.due.map((d) => `${d.schedule.id} ${iso(d.at)}`), [
      "a 2026-01-01T00:00:01.000Z",
    ]);
    assert.equal(plan.changed, true, "a moved on, b is new");
    assert.deepEqual([...plan.record], [
      ["a", at("2026-01-01T00:00:01Z")],
      ["other", 5],
      ["b", clock.now],
    ]);
    assert.equal(iso(plan.next), "2026-01-01T00:00:02.000Z");
    assert.deepEqual(record.get("a"), at("2026-01-01T00:00:00Z"), "the record given is untouched");
  },
});
