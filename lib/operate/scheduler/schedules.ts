/**
 * What a schedule is, and the one door every schedule goes through, from `createScheduler`'s
 * options or from a schedule file: each is checked and its cron expression compiled (by croner),
 * and bad input becomes one line naming the schedule and the problem.
 * @module
 */
import { Cron } from "../../deps/croner.ts";
import { errorMessage, UsageError } from "../../core/errors.ts";
import { DEFAULT_NAME, MAX_ID_LENGTH } from "../../core/task.ts";
import { printable } from "../../core/text.ts";

/**
 * What happens to the ticks missed while no scheduler held the lease (none ran, or the broker was
 * down): `"skip"` drops them; `"once"` fires the most recent one once, as soon as a scheduler
 * leads again, marked with the header `x-tareas-catch-up`.
 */
export type CatchUp = "skip" | "once";

/** The catch-up policies, for messages. */
const CATCH_UPS: readonly CatchUp[] = ["skip", "once"];

/**
 * One periodic task: every time `cron` matches, one task named `name` carrying `payload` is
 * enqueued, with the id `<id>@<the tick's ISO time>`.
 *
 * @example
 * ```ts
 * const schedule: Schedule = {
 *   id: "daily-report",
 *   cron: "0 7 * * 1-5",
 *   timezone: "Europe/Madrid",
 *   name: "report",
 *   payload: { format: "pdf" },
 * };
 * ```
 */
export interface Schedule {
  /**
   * Names the schedule in task ids, logs and the lease's record: 1 to 100 letters, digits, `_`,
   * `-`, `.` or `:`, starting with a letter or a digit. Keep it when the cron expression changes:
   * the record of what was fired is kept by id.
   */
  id: string;
  /**
   * A cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds
   * first), or a nickname such as `@hourly`; day-of-month and day-of-week match either, as in
   * Vixie cron.
   */
  cron: string;
  /** The task's name, which picks its handler. @default {"default"} */
  name?: string | undefined;
  /** The task's payload: any JSON value. @default {null} */
  payload?: unknown;
  /** The IANA time zone the expression is read in, such as `Europe/Madrid`. @default {"UTC"} */
  timezone?: string | undefined;
}

/** A checked schedule with its compiled expression. */
export interface CompiledSchedule {
  /** The schedule's id. */
  id: string;
  /** The cron expression as written. */
  cron: string;
  /** The compiled expression. */
  pattern: Cron;
  /** The task's name. */
  name: string;
  /** The task's payload. */
  payload: unknown;
  /** The time zone, `UTC` unless given. */
  timezone: string;
  /** The catch-up policy (the scheduler's). */
  catchUp: CatchUp;
}

/** The most schedules one scheduler takes. */
export const MAX_SCHEDULES = 1_000;

/** Longest schedule id: the task id `<id>@<ISO time>` must fit in a task id. */
export const MAX_SCHEDULE_ID_LENGTH = 100;

const ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,${MAX_SCHEDULE_ID_LENGTH - 1}}$`);

/** The fields of a schedule, for the unknown-field message. */
const FIELDS = ["id", "cron", "name", "payload", "timezone"];

/**
 * Checks `catchUp` (the scheduler's default policy).
 *
 * @throws {UsageError} for anything but `"skip"`, `"once"` or undefined.
 */
export function checkCatchUp(catchUp: unknown): CatchUp {
  if (catchUp === undefined || isCatchUp(catchUp)) return catchUp ?? "skip";
  throw new UsageError(`Invalid catchUp ${shown(catchUp)}: expected "skip" or "once"`);
}

function isCatchUp(value: unknown): value is CatchUp {
  return typeof value === "string" && (CATCH_UPS as string[]).includes(value);
}

/** The `catchUp` field of a schedule file, `fallback` when absent. */
function catchUpField(value: unknown, fallback: CatchUp, where: string): CatchUp {
  if (value === undefined) return fallback;
  if (isCatchUp(value)) return value;
  throw new UsageError(`${where}: "catchUp" must be "skip" or "once", not ${shown(value)}`);
}

/**
 * Checks schedules and compiles their expressions. `source` starts each error message, such as
 * `Invalid schedules` or `Invalid schedule file schedules.json`.
 *
 * @throws {UsageError} one line naming the schedule (its id, or its position when it has no
 *   valid id) and the problem.
 * @example
 * ```ts
 * const [daily] = checkSchedules([{ id: "daily", cron: "0 7 * * *" }], "skip");
 * daily.pattern.nextRun(); // the next 07:00 UTC
 * ```
 */
export function checkSchedules(
  schedules: unknown,
  catchUp: CatchUp,
  source = "Invalid schedules",
): CompiledSchedule[] {
  if (!Array.isArray(schedules) || schedules.length === 0) {
    throw new UsageError(`${source}: expected a list of at least one schedule`);
  }
  if (schedules.length > MAX_SCHEDULES) {
    throw new UsageError(`${source}: ${schedules.length} schedules, at most ${MAX_SCHEDULES}`);
  }
  const seen = new Set<string>();
  return schedules.map((value, index) => {
    const compiled = checkSchedule(value, index, catchUp, source);
    if (seen.has(compiled.id)) {
      throw new UsageError(`${source}: schedule "${compiled.id}": the id is used twice`);
    }
    seen.add(compiled.id);
    return compiled;
  });
}

function checkSchedule(
  value: unknown,
  index: number,
  catchUp: CatchUp,
  source: string,
): CompiledSchedule {
  const where = (id?: string) => `${source}: schedule ${id ? `"${id}"` : index + 1}`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`${where()}: expected an object with "id" and "cron"`);
  }
  const fields = value as Record<string, unknown>;
  const { id, cron, name, payload, timezone } = fields;
  if (typeof id !== "string" || !ID.test(id)) {
    throw new UsageError(
      `${where()}: "id" must be 1 to ${MAX_SCHEDULE_ID_LENGTH} letters, digits, "_", "-", "." ` +
        `or ":", starting with a letter or a digit${id === undefined ? "" : `, not ${shown(id)}`}`,
    );
  }
  const unknown = Object.keys(fields).find((field) => !FIELDS.includes(field));
  if (unknown !== undefined) {
    throw new UsageError(
      `${where(id)}: unknown field ${shown(unknown)} (a schedule has ${FIELDS.join(", ")})`,
    );
  }
  if (typeof cron !== "string" || cron.trim() === "") {
    throw new UsageError(`${where(id)}: "cron" must be a cron expression such as "*/5 * * * *"`);
  }
  const zone = checkTimezone(timezone, where(id));
  if (
    name !== undefined && (typeof name !== "string" || name === "" || name.length > MAX_ID_LENGTH)
  ) {
    throw new UsageError(
      `${where(id)}: "name" must be a string of 1 to ${MAX_ID_LENGTH} characters`,
    );
  }
  if (payload !== undefined) checkJson(payload, where(id));
  let pattern: Cron;
  try {
    pattern = new Cron(cron, { timezone: zone, mode: "5-or-6-parts", domAndDow: false });
  } catch (error) {
    const reason = errorMessage(error).replace(/^Cron\w*: /, "").replace(/\.$/, "");
    throw new UsageError(`${where(id)}: invalid cron ${shown(cron)}: ${reason}`, { cause: error });
  }
  if (pattern.nextRun() === null) {
    throw new UsageError(`${where(id)}: cron ${shown(cron)} never fires`);
  }
  return {
    id,
    cron,
    pattern,
    name: name ?? DEFAULT_NAME,
    payload: payload ?? null,
    timezone: zone,
    catchUp,
  };
}

function checkTimezone(timezone: unknown, where: string): string {
  if (timezone === undefined) return "UTC";
  if (typeof timezone === "string" && timezone !== "") {
    try {
      // The platform's own list of IANA zones: croner reads the zone through it too.
      new Intl.DateTimeFormat("en-US", { timeZone: timezone });
      return timezone;
    } catch {
      // Not a zone: said below.
    }
  }
  throw new UsageError(
    `${where}: unknown time zone ${
      shown(timezone)
    } (expected an IANA name such as "Europe/Madrid")`,
  );
}

function checkJson(payload: unknown, where: string): void {
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    throw new UsageError(`${where}: "payload" is not JSON: ${errorMessage(error)}`);
  }
  if (json === undefined) throw new UsageError(`${where}: "payload" is not JSON`);
}

/** A value as it appears in a message: JSON, on one line, cut short. */
function shown(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return printable(json.length > 80 ? `${json.slice(0, 79)}…` : json);
}

/** What a schedule file holds, checked. */
export interface ScheduleFile {
  /** The default catch-up policy of its schedules. */
  catchUp: CatchUp;
  /** Its schedules, as `createScheduler` takes them. */
  schedules: Schedule[];
}

/**
 * Reads a schedule file's text: a JSON object with `schedules` (a list of {@linkcode Schedule})
 * and optionally `catchUp`. `path` names the file in messages.
 *
 * @throws {UsageError} one line naming the file, the schedule and the problem.
 * @example
 * ```ts
 * const { schedules, catchUp } = parseScheduleFile(
 *   '{"schedules": [{"id": "cleanup", "cron": "*\/5 * * * *", "name": "cleanup"}]}',
 *   "schedules.json",
 * );
 * ```
 */
export function parseScheduleFile(text: string, path: string): ScheduleFile {
  const source = `Invalid schedule file ${printable(path)}`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${source}: not JSON: ${errorMessage(error)}`, { cause: error });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`${source}: expected a JSON object such as {"schedules": [...]}`);
  }
  const { schedules, catchUp, ...rest } = value as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) {
    throw new UsageError(
      `${source}: unknown field ${shown(unknown)} (the file has "schedules" and "catchUp")`,
    );
  }
  const policy = catchUpField(catchUp, "skip", source);
  checkSchedules(schedules, policy, source);
  return { catchUp: policy, schedules: schedules as Schedule[] };
}
