/**
 * The benchmark suite: runs every scenario against ours, the floor and BullMQ, interleaving the
 * systems within each repetition, and returns the raw measurements for the report.
 * @module
 */
import { describeEnvironment, type Environment } from "./_machine.ts";
import type { FailoverRun, StartupRun, ThroughputRun, ThroughputShape } from "./_results.ts";
import { runBullmqFailover, runBullmqStartup, runBullmqThroughput } from "./bullmq.ts";
import { runBareStartup, runFloorThroughput } from "./floor.ts";
import {
  type MakespanRun,
  oursAvailable,
  runOursFailover,
  runOursMakespan,
  runOursStartup,
  runOursThroughput,
} from "./ours.ts";

/** The systems compared. */
export const SYSTEMS = ["ours", "floor", "bullmq"] as const;
/** One of {@linkcode SYSTEMS}. */
export type SystemName = typeof SYSTEMS[number];

/** The scenarios. */
export const SCENARIOS = ["throughput", "failover", "startup", "makespan"] as const;
/** One of {@linkcode SCENARIOS}. */
export type ScenarioName = typeof SCENARIOS[number];

/** A throughput scenario: a label and the shape of the consumers. */
export interface ThroughputScenario extends ThroughputShape {
  /** Short key, `a`, `b` or `c`. */
  key: string;
  /** What it is, in words. */
  title: string;
}

/** The three throughput scenarios of the issue. */
export const THROUGHPUT_SCENARIOS: readonly ThroughputScenario[] = [
  { key: "a", title: "1 consumer, prefetch 1", consumers: 1, prefetch: 1, concurrency: 1 },
  {
    key: "b",
    title: "1 consumer, prefetch 10, concurrency 10",
    consumers: 1,
    prefetch: 10,
    concurrency: 10,
  },
  { key: "c", title: "3 consumers, prefetch 1", consumers: 3, prefetch: 1, concurrency: 1 },
];

/** Options of {@linkcode runSuite}; {@linkcode resolveSuiteOptions} fills the defaults. */
export interface SuiteOptions {
  /** Small sizes for a smoke run. @default false */
  quick?: boolean;
  /** No-op tasks per throughput run. @default {10_000, quick 50} */
  tasks?: number;
  /** Repetitions of each throughput and makespan run. @default {3, quick 1} */
  reps?: number;
  /** Repetitions of each start-up measurement. @default {max(5, reps), quick 1} */
  startupReps?: number;
  /** Kills of our workers. @default {20, quick 3} */
  kills?: number;
  /** Kills of BullMQ workers, run at the same time on separate queues; 0 skips. @default {3, quick 0} */
  bullmqKills?: number;
  /** Seconds per unit of complexity in the original scenario. @default {1, quick 0.02} */
  timeScale?: number;
  /** Scenarios to run. @default {all} */
  scenarios?: readonly ScenarioName[];
  /** Systems to run. @default {all; ours only when worker.ts and producer.ts exist} */
  systems?: readonly SystemName[];
  /** `LOG_LEVEL` for our worker processes. @default {unset: the worker's default} */
  workerLogLevel?: string;
  /** Called with a line of progress. @default {nothing} */
  onProgress?: (line: string) => void;
}

/** {@linkcode SuiteOptions} with every default applied. */
export interface ResolvedSuiteOptions {
  /** See {@linkcode SuiteOptions.quick}. */
  quick: boolean;
  /** See {@linkcode SuiteOptions.tasks}. */
  tasks: number;
  /** See {@linkcode SuiteOptions.reps}. */
  reps: number;
  /** See {@linkcode SuiteOptions.startupReps}. */
  startupReps: number;
  /** See {@linkcode SuiteOptions.kills}. */
  kills: number;
  /** See {@linkcode SuiteOptions.bullmqKills}. */
  bullmqKills: number;
  /** See {@linkcode SuiteOptions.timeScale}. */
  timeScale: number;
  /** See {@linkcode SuiteOptions.scenarios}. */
  scenarios: ScenarioName[];
  /** See {@linkcode SuiteOptions.systems}. */
  systems: SystemName[];
  /** See {@linkcode SuiteOptions.workerLogLevel}. */
  workerLogLevel?: string;
}

/** Throughput runs of one scenario, per system, indexed by repetition (`undefined`: failed). */
export interface ThroughputResult {
  /** The scenario. */
  scenario: ThroughputScenario;
  /** Runs per system, one slot per repetition. */
  runs: Record<SystemName, (ThroughputRun | undefined)[]>;
}

/** Failover measurements. */
export interface FailoverResult {
  /** Ours, one per kill. */
  ours: FailoverRun[];
  /** BullMQ, one per kill. */
  bullmq: FailoverRun[];
}

/** Start-up and idle memory, per process kind, one per repetition. */
export interface StartupResult {
  /** The bare Deno + amqplib consumer. */
  bare: StartupRun[];
  /** Our worker. */
  ours: StartupRun[];
  /** A BullMQ worker (for information). */
  bullmq: StartupRun[];
}

/** Everything one suite run measured. */
export interface SuiteResult {
  /** Where and when. */
  environment: Environment;
  /** The options in force. */
  options: ResolvedSuiteOptions;
  /** Throughput per scenario (empty when skipped). */
  throughput: ThroughputResult[];
  /** Failover (undefined when skipped). */
  failover?: FailoverResult;
  /** Start-up and memory (undefined when skipped). */
  startup?: StartupResult;
  /** The original scenario's runs (undefined when skipped). */
  makespan?: MakespanRun[];
  /** Runs that failed, one line each. */
  errors: string[];
  /** Things the reader should know (skipped systems, …). */
  notes: string[];
  /** 1, 5 and 15-minute load averages when the suite ended. */
  finalLoadAverage: number[];
}

/** Applies the defaults (full or quick) to `options`. */
export function resolveSuiteOptions(options: SuiteOptions = {}): ResolvedSuiteOptions {
  const quick = options.quick ?? false;
  const reps = options.reps ?? (quick ? 1 : 3);
  return {
    quick,
    tasks: options.tasks ?? (quick ? 50 : 10_000),
    reps,
    startupReps: options.startupReps ?? (quick ? 1 : Math.max(5, reps)),
    kills: options.kills ?? (quick ? 3 : 20),
    bullmqKills: options.bullmqKills ?? (quick ? 0 : 3),
    timeScale: options.timeScale ?? (quick ? 0.02 : 1),
    scenarios: [...options.scenarios ?? SCENARIOS],
    systems: [...options.systems ?? SYSTEMS],
    ...(options.workerLogLevel ? { workerLogLevel: options.workerLogLevel } : {}),
  };
}

function firstLine(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message.split("\n")[0]}` : String(error);
}

/**
 * Runs the suite. A run that fails is recorded in `errors` and the suite goes on.
 *
 * @example
 * ```ts
 * const result = await runSuite({ quick: true, onProgress: console.error });
 * await Deno.writeTextFile("BENCHMARKS.md", renderReport(result));
 * ```
 */
export async function runSuite(options: SuiteOptions = {}): Promise<SuiteResult> {
  const o = resolveSuiteOptions(options);
  const progress = options.onProgress ?? (() => {});
  const notes: string[] = [];
  const errors: string[] = [];
  if (o.systems.includes("ours") && !await oursAvailable()) {
    o.systems = o.systems.filter((s) => s !== "ours");
    notes.push("Ours was skipped: worker.ts or producer.ts is missing.");
  }
  const has = (system: SystemName) => o.systems.includes(system);
  const ours = o.workerLogLevel ? { workerLogLevel: o.workerLogLevel } : {};
  const environment = await describeEnvironment();
  const result: SuiteResult = {
    environment,
    options: o,
    throughput: [],
    errors,
    notes,
    finalLoadAverage: [],
  };

  /** Runs `fn`, recording a failure as an error line instead of throwing. */
  async function attempt<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (error) {
      errors.push(`${what}: ${firstLine(error)}`);
      progress(`${what} FAILED: ${firstLine(error)}`);
      return undefined;
    }
  }

  if (o.scenarios.includes("throughput")) {
    for (const scenario of THROUGHPUT_SCENARIOS) {
      const runs: ThroughputResult["runs"] = { ours: [], floor: [], bullmq: [] };
      const shape = { ...scenario, tasks: o.tasks };
      const runners: Record<SystemName, () => Promise<ThroughputRun>> = {
        ours: () => runOursThroughput({ ...shape, ...ours }),
        floor: () => runFloorThroughput(shape),
        bullmq: () => runBullmqThroughput(shape),
      };
      for (let rep = 0; rep < o.reps; rep++) {
        // Rotate the order each repetition so drift on a shared machine spreads evenly.
        const order = o.systems.map((_, i) => o.systems[(i + rep) % o.systems.length]!);
        for (const system of order) {
          const what = `throughput ${scenario.key} (${scenario.title}) ${system} rep ${rep + 1}`;
          const run = await attempt(what, runners[system]);
          runs[system][rep] = run;
          if (run) progress(`${what}: ${run.tasksPerSecond.toFixed(0)} tasks/s`);
        }
      }
      result.throughput.push({ scenario, runs });
    }
  }

  if (o.scenarios.includes("failover")) {
    const failover: FailoverResult = { ours: [], bullmq: [] };
    if (has("ours")) {
      failover.ours = await attempt(
        "failover ours",
        () => runOursFailover({ kills: o.kills, ...ours }),
      ) ?? [];
      progress(`failover ours: ${failover.ours.length} kills`);
    }
    if (has("bullmq") && o.bullmqKills > 0) {
      // Each trial waits out BullMQ's 30 s stall detection: they run at the same time.
      failover.bullmq = await attempt(
        "failover bullmq",
        () => runBullmqFailover({ kills: o.bullmqKills }),
      ) ?? [];
      progress(`failover bullmq: ${failover.bullmq.length} kills`);
    } else if (has("bullmq")) {
      notes.push("BullMQ failover was skipped (--bullmq-kills 0; the default in --quick mode).");
    }
    result.failover = failover;
  }

  if (o.scenarios.includes("startup")) {
    const startup: StartupResult = { bare: [], ours: [], bullmq: [] };
    const runners = {
      bare: runBareStartup,
      ours: () => runOursStartup(ours),
      bullmq: runBullmqStartup,
    };
    const kinds = (["bare", "ours", "bullmq"] as const).filter((k) =>
      k === "bare" ? has("floor") : has(k)
    );
    // One unmeasured start of each first, so every measured one finds warm caches.
    for (const kind of kinds) await attempt(`startup warm-up ${kind}`, runners[kind]);
    for (let rep = 0; rep < o.startupReps; rep++) {
      for (const kind of kinds) {
        const run = await attempt(`startup ${kind} rep ${rep + 1}`, runners[kind]);
        if (run) startup[kind].push(run);
      }
    }
    progress(`startup: ${o.startupReps} reps`);
    result.startup = startup;
  }

  if (o.scenarios.includes("makespan") && has("ours")) {
    const runs: MakespanRun[] = [];
    for (let rep = 0; rep < o.reps; rep++) {
      const run = await attempt(
        `makespan rep ${rep + 1}`,
        () => runOursMakespan({ timeScale: o.timeScale, ...ours }),
      );
      if (run) {
        runs.push(run);
        progress(`makespan rep ${rep + 1}: ${run.makespanMs.toFixed(0)} ms`);
      }
    }
    result.makespan = runs;
  }
  result.finalLoadAverage = Deno.loadavg();
  return result;
}
