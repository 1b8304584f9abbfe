/**
 * `deno task schedule --file schedules.json`: enqueues tasks by the clock, as the schedule file
 * says (see `lib/operate/scheduler.ts`). Run several for availability: one leads and fires, the
 * others stand by. Log lines go to stderr; an expected failure is one line on stderr.
 * @module
 */
import { onStopSignals, runMain } from "../lib/cli/main.ts";
import {
  common,
  COMMON_HELP,
  type CommonConfig,
  environment,
  ENVIRONMENT_HELP,
  EXIT_CODES_HELP,
  parse,
  str,
} from "../lib/cli/flags.ts";
import { errorMessage, UsageError } from "../lib/core/errors.ts";
import { log } from "../lib/core/log.ts";
import { printable } from "../lib/core/text.ts";
import { createScheduler, parseScheduleFile } from "../lib/operate/scheduler.ts";

/** `deno task schedule` settings. */
export interface ScheduleConfig extends CommonConfig {
  /** The schedule file (`--file`). */
  file: string;
}

/** `deno task schedule --help`. */
export const SCHEDULE_HELP = `Usage: deno task schedule --file FILE [flags]

Enqueues one task per tick of each schedule of FILE, with the id <schedule id>@<tick ISO time>.
Run as many as you like on one queue: RabbitMQ hands the lease (the queue <queue>.scheduler) to
one of them, which fires; the others stand by and take over within milliseconds when it stops or
dies. Each tick is enqueued once, also when a scheduler is killed in the middle of a tick.

Flags:
  --file FILE          the schedule file (JSON, see below; required)
${COMMON_HELP}

Schedule file:
  {
    "catchUp": "skip",
    "schedules": [
      { "id": "cleanup", "cron": "*/5 * * * *", "name": "cleanup", "payload": { "days": 30 } },
      { "id": "report", "cron": "0 7 * * 1-5", "timezone": "Europe/Madrid", "name": "report" }
    ]
  }
  id        1 to 100 letters, digits, _ - . : (keep it when the cron changes)
  cron      5 fields (minute hour day month weekday), 6 with seconds first, or @hourly, @daily...
  name      the task's name, which picks its handler (default "default")
  payload   any JSON (default null)
  timezone  an IANA zone the cron is read in (default UTC)
  catchUp   (for the whole file) ticks missed while no scheduler ran: "skip" drops them
            (default), "once" fires the most recent one once, late

${ENVIRONMENT_HELP}

${EXIT_CODES_HELP}

Examples:
  deno task schedule --file schedules.json
  deno task schedule --file schedules.json --queue reports`;

/**
 * Parses `deno task schedule`'s flags and environment.
 *
 * @throws {UsageError} on an unknown flag, a bad value or a missing --file.
 */
export function parseScheduleArgs(
  args: string[],
  env: Record<string, string | undefined> = environment(),
): ScheduleConfig | "help" {
  const values = parse(args, { file: { type: "string" } });
  if (values === "help") return values;
  const file = str(values, "file");
  if (file === undefined || file === "") {
    throw new UsageError("Missing --file: the schedule file (JSON); see --help");
  }
  return { ...common(values, env), file };
}

async function schedule(config: ScheduleConfig): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(config.file);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : errorMessage(error);
    throw new UsageError(`Cannot read the schedule file ${printable(config.file)}: ${reason}`, {
      cause: error,
    });
  }
  const { schedules, catchUp } = parseScheduleFile(text, config.file);
  const scheduler = await createScheduler({
    url: config.url,
    queue: config.queue,
    heartbeat: config.heartbeat,
    schedules,
    catchUp,
  });
  const signals = onStopSignals(() => scheduler.close(), () => {
    log("scheduler").warn("Second signal: exiting now; the lease passes to a standby");
    Deno.exit(1);
  });
  try {
    await scheduler.closed;
  } finally {
    signals.remove();
  }
  return 0;
}

if (import.meta.main) {
  await runMain("schedule", {
    parse: () => parseScheduleArgs(Deno.args),
    help: SCHEDULE_HELP,
    run: schedule,
  });
}
