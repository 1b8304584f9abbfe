/**
 * `deno task bench`: runs the benchmark suite (ours, the floor, BullMQ) and writes BENCHMARKS.md
 * at the repository root. Progress goes to stderr.
 *
 * Exit codes: 0 all runs succeeded, 1 some run failed (the report lists it), 2 bad flags.
 * @module
 */
import { parseArgs } from "node:util";
import { renderReport } from "./report.ts";
import {
  runSuite,
  type ScenarioName,
  SCENARIOS,
  type SuiteOptions,
  type SystemName,
  SYSTEMS,
} from "./suite.ts";
import { REPO_ROOT } from "./_util.ts";

const HELP = `Usage: deno task bench [flags]

Runs the benchmarks and writes BENCHMARKS.md at the repository root.

  --tasks N            no-op tasks per throughput run (default 10000, quick 50)
  --reps N             repetitions of each throughput, publish and makespan run (default 5, quick 1)
  --max-reps N         more throughput repetitions, up to N, while a goal's verdict is open
                       (its per-repetition ratios straddle it) (default 2 × reps, quick reps)
  --startup-reps N     repetitions of each start-up measurement (default max(5, reps), quick 1)
  --kills N            SIGKILLs of our workers for failover (default 20, quick 3)
  --bullmq-kills N     SIGKILLs of BullMQ workers, concurrent, ~30-60 s; 0 skips (default 3, quick 0)
  --time-scale F       seconds per unit of complexity in the original scenario (default 1, quick 0.02)
  --publish-count N    messages per publish run (default 100000, quick 200)
  --restarts N         broker restarts in the recovery scenario (default 5, quick 1)
  --scale-tasks N      tasks of the scale scenario (default 1000000, quick 200)
  --cluster-kills N    kills of the leader's and of a follower's node each (default 5, quick 1)
  --calls N            calls per system and number in flight, call scenario (default 1000, quick 20)
  --delay-tasks N      tasks per run of the delays scenario (default 100000, quick 200)
  --max-delay S        delays drawn uniformly from 0 to S seconds (default 60, quick 2)
  --delay-reps N       repetitions of the delays scenario (default 1: a run takes minutes)
  --only LIST          scenarios, comma-separated: ${SCENARIOS.join(",")}
                       (default all but cluster, which needs lib/operate/local_cluster.ts and ~400 MiB)
  --systems LIST       systems, comma-separated: ${SYSTEMS.join(",")} (default all)
  --worker-log-level L LOG_LEVEL for our workers (default warning: per-task info lines cost more)
  --quick              tiny sizes for a smoke run
  --out FILE           where to write the report (default BENCHMARKS.md at the repository root)
  -h, --help           show this help

Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), REDIS_URL (default
redis://127.0.0.1:6379).`;

/** A bad flag: one line and exit code 2. */
class UsageError extends Error {
  /** Creates a usage error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

function positiveInt(raw: string | undefined, flag: string, min = 1): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`Invalid --${flag} "${raw}": expected a whole number ≥ ${min}`);
  }
  return value;
}

function list<T extends string>(raw: string | undefined, flag: string, all: readonly T[]) {
  if (raw === undefined) return undefined;
  const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!all.includes(item as T)) {
      throw new UsageError(`Invalid --${flag} "${item}": expected some of ${all.join(", ")}`);
    }
  }
  return items as T[];
}

/** Parses the command line into suite options and the output path. */
export function parseBenchArgs(args: string[]): { options: SuiteOptions; out: string } | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        tasks: { type: "string" },
        reps: { type: "string" },
        "max-reps": { type: "string" },
        "startup-reps": { type: "string" },
        "publish-count": { type: "string" },
        restarts: { type: "string" },
        "scale-tasks": { type: "string" },
        "cluster-kills": { type: "string" },
        calls: { type: "string" },
        "delay-tasks": { type: "string" },
        "max-delay": { type: "string" },
        "delay-reps": { type: "string" },
        kills: { type: "string" },
        "bullmq-kills": { type: "string" },
        "time-scale": { type: "string" },
        only: { type: "string" },
        systems: { type: "string" },
        "worker-log-level": { type: "string" },
        quick: { type: "boolean" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; see --help`);
  }
  if (values.help) return "help";
  const timeScaleRaw = values["time-scale"];
  const timeScale = timeScaleRaw === undefined ? undefined : Number(timeScaleRaw);
  if (timeScale !== undefined && !(timeScale > 0 && timeScale <= 3600)) {
    throw new UsageError(`Invalid --time-scale "${timeScaleRaw}": expected a number in (0, 3600]`);
  }
  const maxDelayRaw = values["max-delay"];
  const maxDelay = maxDelayRaw === undefined ? undefined : Number(maxDelayRaw);
  if (maxDelay !== undefined && !(maxDelay >= 0 && maxDelay <= 3600)) {
    throw new UsageError(`Invalid --max-delay "${maxDelayRaw}": expected seconds from 0 to 3600`);
  }
  const options: SuiteOptions = {};
  const set = <K extends keyof SuiteOptions>(key: K, value: SuiteOptions[K] | undefined) => {
    if (value !== undefined) options[key] = value;
  };
  set("quick", values.quick);
  set("tasks", positiveInt(values.tasks, "tasks"));
  set("reps", positiveInt(values.reps, "reps"));
  set("maxReps", positiveInt(values["max-reps"], "max-reps"));
  set("publishCount", positiveInt(values["publish-count"], "publish-count"));
  set("restarts", positiveInt(values.restarts, "restarts"));
  set("scaleTasks", positiveInt(values["scale-tasks"], "scale-tasks", 2));
  set("clusterKills", positiveInt(values["cluster-kills"], "cluster-kills"));
  set("calls", positiveInt(values.calls, "calls"));
  set("delayTasks", positiveInt(values["delay-tasks"], "delay-tasks"));
  set("maxDelayMs", maxDelay === undefined ? undefined : Math.round(maxDelay * 1000));
  set("delayReps", positiveInt(values["delay-reps"], "delay-reps"));
  set("startupReps", positiveInt(values["startup-reps"], "startup-reps"));
  set("kills", positiveInt(values.kills, "kills"));
  set("bullmqKills", positiveInt(values["bullmq-kills"], "bullmq-kills", 0));
  set("timeScale", timeScale);
  set("scenarios", list<ScenarioName>(values.only, "only", SCENARIOS));
  set("systems", list<SystemName>(values.systems, "systems", SYSTEMS));
  set("workerLogLevel", values["worker-log-level"] ?? "warning");
  set("commandLine", ["deno task bench", ...args].join(" "));
  return { options, out: values.out ?? `${REPO_ROOT}BENCHMARKS.md` };
}

/** Runs `deno fmt` on the report so that the repository's `deno fmt --check` accepts it. */
async function formatMarkdown(path: string): Promise<void> {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", path],
    cwd: REPO_ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    console.error(`bench: deno fmt ${path} failed: ${new TextDecoder().decode(stderr).trim()}`);
  }
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseBenchArgs(Deno.args);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
  if (parsed === "help") {
    console.log(HELP);
    return 0;
  }
  const started = performance.now();
  const result = await runSuite({
    ...parsed.options,
    onProgress: (line) => console.error(`bench: ${line}`),
  });
  await Deno.writeTextFile(parsed.out, renderReport(result));
  await formatMarkdown(parsed.out);
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  console.error(`bench: wrote ${parsed.out} in ${seconds} s`);
  if (result.errors.length > 0) {
    console.error(`bench: ${result.errors.length} run(s) failed; see the report's Errors section`);
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  Deno.exitCode = await main();
}
