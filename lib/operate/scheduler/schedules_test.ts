import assert from "node:assert/strict";
import { UsageError } from "../../core/errors.ts";
import { checkCatchUp, checkSchedules, MAX_SCHEDULES, parseScheduleFile } from "./schedules.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** The one-line message `fn` throws as a UsageError. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError, `a UsageError, not ${error}`);
    assert.ok(!error.message.includes("\n"), `one line: ${error.message}`);
    assert.ok(!error.message.endsWith("."), `no trailing period: ${error.message}`);
    return error.message;
  }
  assert.fail("expected a refusal");
}

Deno.test({
  name: "a schedule gets its defaults: the default name, a null payload, UTC, the catch-up given",
  ...options,
  fn() {
    const [s] = checkSchedules([{ id: "cleanup", cron: "*/5 * * * *" }], "once");
    assert.equal(s!.name, "default");
    assert.equal(s!.payload, null);
    assert.equal(s!.timezone, "UTC");
    assert.equal(s!.catchUp, "once");
    assert.equal(
      s!.pattern.nextRun(new Date("2026-01-01T00:03:00Z"))?.toISOString(),
      "2026-01-01T00:05:00.000Z",
    );
    const [t] = checkSchedules([{
      id: "r",
      cron: "@hourly",
      name: "report",
      payload: [1],
    }], "skip");
    assert.deepEqual([t!.name, t!.payload, t!.catchUp], ["report", [1], "skip"]);
  },
});

Deno.test({
  name: "each bad schedule is refused in one line naming the schedule and the problem",
  ...options,
  fn() {
    const cases: [unknown, RegExp][] = [
      [[], /^Invalid schedules: expected a list of at least one schedule$/],
      [{ id: "a" }, /expected a list/],
      [["x"], /^Invalid schedules: schedule 1: expected an object with "id" and "cron"$/],
      [[{ cron: "* * * * *" }], /^Invalid schedules: schedule 1: "id" must be 1 to 100 letters/],
      [[{ id: "a b", cron: "* * * * *" }], /schedule 1: "id" must be .*, not "a b"$/],
      [[{ id: "x".repeat(101), cron: "* * * * *" }], /schedule 1: "id" must be 1 to 100/],
      [
        [{ id: "a", cron: "* * * * *" }, { id: "a", cron: "0 * * * *" }],
        /schedule "a": the id is used twice$/,
      ],
      [
        [{ id: "a", cron: "* * * * *", paylod: 1 }],
        /schedule "a": unknown field "paylod" \(a schedule has id, cron/,
      ],
      [[{ id: "a" }], /schedule "a": "cron" must be a cron expression such as/],
      [
        [{ id: "a", cron: "61 * * * *" }],
        /schedule "a": invalid cron "61 \* \* \* \*": Invalid value for minute: 61$/,
      ],
      [[{ id: "a", cron: "* * * *" }], /schedule "a": invalid cron "\* \* \* \*": .*parts/],
      [[{ id: "a", cron: "* * * * * * 2030" }], /schedule "a": invalid cron .*7 parts/],
      [[{ id: "a", cron: "0 0 31 2 *" }], /schedule "a": cron "0 0 31 2 \*" never fires$/],
      [
        [{ id: "a", cron: "* * * * *", timezone: "Mars/Olympus" }],
        /schedule "a": unknown time zone "Mars\/Olympus" \(expected an IANA name/,
      ],
      [
        [{ id: "a", cron: "* * * * *", name: "" }],
        /schedule "a": "name" must be a string of 1 to 200/,
      ],
      [[{ id: "a", cron: "* * * * *", payload: () => 1 }], /schedule "a": "payload" is not JSON$/],
      [
        [{ id: "a", cron: "* * * * *", payload: { n: 1n } }],
        /schedule "a": "payload" is not JSON: /,
      ],
      [
        [{ id: "a", cron: "* * * * *", catchUp: "once" }],
        /schedule "a": unknown field "catchUp" \(a schedule has id, cron, name, payload, timezone\)$/,
      ],
      [[{ id: "a\nINFO forged", cron: "* * * * *" }], /not "a\\nINFO forged"$/],
    ];
    for (const [schedules, expected] of cases) {
      assert.match(refusal(() => checkSchedules(schedules, "skip")), expected);
    }
    const many = Array.from(
      { length: MAX_SCHEDULES + 1 },
      (_, i) => ({ id: `s${i}`, cron: "* * * * *" }),
    );
    assert.match(refusal(() => checkSchedules(many, "skip")), /1001 schedules, at most 1000$/);
    assert.match(
      refusal(() => checkCatchUp("never")),
      /^Invalid catchUp "never": expected "skip" or "once"$/,
    );
  },
});

Deno.test({
  name: "a schedule file: its catch-up applies to all its schedules, skip by default",
  ...options,
  fn() {
    const file = parseScheduleFile(
      JSON.stringify({
        catchUp: "once",
        schedules: [
          { id: "a", cron: "* * * * *", name: "n", payload: { x: 1 } },
          { id: "b", cron: "0 7 * * *", timezone: "Europe/Madrid" },
        ],
      }),
      "schedules.json",
    );
    assert.equal(file.catchUp, "once");
    assert.deepEqual(checkSchedules(file.schedules, file.catchUp).map((s) => s.catchUp), [
      "once",
      "once",
    ]);
    assert.equal(
      parseScheduleFile('{"schedules": [{"id": "a", "cron": "* * * * *"}]}', "f").catchUp,
      "skip",
    );
  },
});

Deno.test({
  name: "a bad schedule file is refused in one line naming the file, the schedule and the problem",
  ...options,
  fn() {
    const cases: [string, RegExp][] = [
      ["", /^Invalid schedule file s\.json: not JSON: /],
      ["{schedules: []}", /^Invalid schedule file s\.json: not JSON: /],
      [
        '[{"id": "a", "cron": "* * * * *"}]',
        /^Invalid schedule file s\.json: expected a JSON object such as/,
      ],
      [
        '{"schedule": []}',
        /^Invalid schedule file s\.json: unknown field "schedule" \(the file has "schedules" and "catchUp"\)$/,
      ],
      [
        '{"schedules": []}',
        /^Invalid schedule file s\.json: expected a list of at least one schedule$/,
      ],
      [
        '{"catchUp": 1, "schedules": [{"id": "a", "cron": "* * * * *"}]}',
        /^Invalid schedule file s\.json: "catchUp" must be "skip" or "once", not 1$/,
      ],
      [
        '{"schedules": [{"id": "cleanup", "cron": "*/5 * * *"}]}',
        /^Invalid schedule file s\.json: schedule "cleanup": invalid cron/,
      ],
    ];
    for (const [text, expected] of cases) {
      assert.match(refusal(() => parseScheduleFile(text, "s.json")), expected);
    }
  },
});
