/**
 * The benchmark suite: runs every scenario against ours, the floor and BullMQ, interleaving the
 * systems within each repetition, and returns the raw measurements for the report.
 * @module
 */
import { describeEnvironment, type Environment } from "./_machine.ts";
import type {
  FailoverRun,
  PublishRun,
  StartupRun,
  ThroughputRun,
  ThroughputShape,
} from "./_results.ts";
import {
  bestOf,
  CALL_BULLMQ_GOAL,
  CALL_FLOOR_GOAL,
  consumerCpuPerTask,
  CPU_GOAL,
  PUBLISH_GOAL,
  rateOf,
  ratiosPerRep,
  repetitions,
  type RunsByVariant,
  SHORT_GOAL,
  straddles,
  THROUGHPUT_GOAL,
} from "./_targets.ts";
import { runBullmqFailover, runBullmqStartup, runBullmqThroughput } from "./bullmq.ts";
import { CALL_IN_FLIGHT, CALL_SYSTEMS, type CallRun, type CallSystem, runCall } from "./call.ts";
import { type ClusterKillRun, runCluster } from "./cluster.ts";
import { type DelaysRun, runDelays } from "./delays.ts";
import { runBareStartup, runFloorPublish, runFloorThroughput } from "./floor.ts";
import {
  type MakespanRun,
  oursAvailable,
  runLibraryPublish,
  runOursFailover,
  runOursMakespan,
  runOursPublish,
  runOursScale,
  runOursStartup,
  runOursThroughput,
  type ScaleRun,
} from "./ours.ts";
import { type RecoveryRun, runRecovery } from "./recovery.ts";
import { Unavailable } from "./_util.ts";

/** The systems compared. */
export const SYSTEMS = ["ours", "floor", "bullmq"] as const;
/** One of {@linkcode SYSTEMS}. */
export type SystemName = typeof SYSTEMS[number];

/** The scenarios, in the order they run. */
export const SCENARIOS = [
  "throughput",
  "short",
  "publish",
  "recovery",
  "scale",
  "failover",
  "startup",
  "makespan",
  "call",
  "delays",
  "cluster",
] as const;
/** One of {@linkcode SCENARIOS}. */
export type ScenarioName = typeof SCENARIOS[number];
/** The scenarios run when `--only` is not given: all but `cluster` (it needs `--only cluster`). */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = SCENARIOS.filter((s) => s !== "cluster");

/** One system in one setting within a throughput scenario. */
export interface Variant {
  /** Key in {@linkcode ThroughputResult.runs}, such as `ours`, `floor-filled` or `bullmq-50`. */
  key: string;
  /** What it is, for the report. */
  label: string;
  /** The system it belongs to (for `--systems`). */
  system: SystemName;
  /** Consumers, prefetch (BullMQ: concurrency) and concurrency. */
  shape: ThroughputShape;
  /** Floor only: publisher running at the same time, or a queue filled beforehand. */
  fill?: "publishing" | "filled";
  /** Floor only: one ack per message, or acks covering contiguous deliveries. */
  ack?: "each" | "batched";
}

/** A throughput scenario: the systems and settings run in each repetition. */
export interface ThroughputScenario {
  /** Short key: `a`, `b`, `c` or `d`. */
  key: string;
  /** What it is, in words. */
  title: string;
  /** Everything run in each repetition, in order (rotated per repetition). */
  variants: readonly Variant[];
  /** The floor our CPU per task (and, in a–c, throughput) is compared with. */
  floor: string;
  /** The BullMQ variants; ours is compared with the best of them in each repetition. */
  bullmq: readonly string[];
}

function abc(key: string, title: string, shape: ThroughputShape): ThroughputScenario {
  return {
    key,
    title,
    floor: "floor",
    bullmq: ["bullmq"],
    variants: [
      { key: "ours", label: "Ours", system: "ours", shape },
      { key: "floor", label: "Floor (publisher running)", system: "floor", shape },
      {
        key: "floor-filled",
        label: "Floor (filled queue)",
        system: "floor",
        shape,
        fill: "filled",
      },
      { key: "bullmq", label: `BullMQ (concurrency ${shape.prefetch})`, system: "bullmq", shape },
    ],
  };
}

/** BullMQ concurrencies tried in the short-task scenario; ours is compared with the best. */
export const BULLMQ_SWEEP = [1, 10, 50, 200] as const;
/** Prefetch and concurrency of our worker in the short-task scenario. */
export const SHORT_PREFETCH = 200;

/** The throughput scenarios: a–c of the issue, then d (short tasks). */
export const THROUGHPUT_SCENARIOS: readonly ThroughputScenario[] = [
  abc("a", "1 consumer, prefetch 1", { consumers: 1, prefetch: 1, concurrency: 1 }),
  abc("b", "1 consumer, prefetch 10, concurrency 10", {
    consumers: 1,
    prefetch: 10,
    concurrency: 10,
  }),
  abc("c", "3 consumers, prefetch 1", { consumers: 3, prefetch: 1, concurrency: 1 }),
  (() => {
    const shape = { consumers: 1, prefetch: SHORT_PREFETCH, concurrency: SHORT_PREFETCH };
    return {
      key: "d",
      title: `short tasks: 1 consumer, prefetch ${SHORT_PREFETCH}, concurrency ${SHORT_PREFETCH}`,
      floor: "floor-batched",
      bullmq: BULLMQ_SWEEP.map((c) => `bullmq-${c}`),
      variants: [
        { key: "ours", label: "Ours", system: "ours", shape },
        { key: "floor", label: "Floor (one ack each)", system: "floor", shape },
        {
          key: "floor-batched",
          label: "Floor (batched acks)",
          system: "floor",
          shape,
          ack: "batched",
        },
        ...BULLMQ_SWEEP.map((c): Variant => ({
          key: `bullmq-${c}`,
          label: `BullMQ (concurrency ${c})`,
          system: "bullmq",
          shape: { consumers: 1, prefetch: c, concurrency: c },
        })),
      ],
    } satisfies ThroughputScenario;
  })(),
];

/** Options of {@linkcode runSuite}; {@linkcode resolveSuiteOptions} fills the defaults. */
export interface SuiteOptions {
  /** Small sizes for a smoke run. @default false */
  quick?: boolean;
  /** No-op tasks per throughput run. @default {10_000, quick 50} */
  tasks?: number;
  /** Repetitions of each throughput, publish and makespan run, at least. @default {5, quick 1} */
  reps?: number;
  /**
   * Repetitions of a throughput scenario or of the publish runs at most: after `reps`, more are
   * run while a goal's verdict is open (its per-repetition ratios straddle it).
   * @default {2 × reps, quick reps}
   */
  maxReps?: number;
  /** Repetitions of each start-up measurement. @default {max(5, reps), quick 1} */
  startupReps?: number;
  /** Kills of our workers. @default {20, quick 3} */
  kills?: number;
  /** Kills of BullMQ workers, run at the same time on separate queues; 0 skips. @default {3, quick 0} */
  bullmqKills?: number;
  /** Seconds per unit of complexity in the original scenario. @default {1, quick 0.02} */
  timeScale?: number;
  /** Messages per publish run. @default {100_000, quick 200} */
  publishCount?: number;
  /** Broker restarts in the recovery scenario. @default {5, quick 1} */
  restarts?: number;
  /** Tasks of the scale scenario. @default {1_000_000, quick 200} */
  scaleTasks?: number;
  /** Kills of each kind (leader, follower) in the cluster scenario. @default {5, quick 1} */
  clusterKills?: number;
  /** Tasks of each run of the delays scenario. @default {100_000, quick 200} */
  delayTasks?: number;
  /**
   * Longest delay of the delays scenario, ms (delays are uniform from 0 to it).
   * @default {60_000, quick 2_000}
   */
  maxDelayMs?: number;
  /** Repetitions of the delays scenario (a run of 100,000 tasks takes minutes). @default 1 */
  delayReps?: number;
  /** Calls measured per system and number in flight (call scenario). @default {1_000, quick 20} */
  calls?: number;
  /** Scenarios to run. @default {DEFAULT_SCENARIOS} */
  scenarios?: readonly ScenarioName[];
  /** Systems to run. @default {all; ours only when worker.ts and producer.ts exist} */
  systems?: readonly SystemName[];
  /** `LOG_LEVEL` for our worker processes. @default {unset: the worker's default} */
  workerLogLevel?: string;
  /** The command line, for the report. @default {rebuilt from the options} */
  commandLine?: string;
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
  /** See {@linkcode SuiteOptions.maxReps}. */
  maxReps: number;
  /** See {@linkcode SuiteOptions.startupReps}. */
  startupReps: number;
  /** See {@linkcode SuiteOptions.kills}. */
  kills: number;
  /** See {@linkcode SuiteOptions.bullmqKills}. */
  bullmqKills: number;
  /** See {@linkcode SuiteOptions.timeScale}. */
  timeScale: number;
  /** See {@linkcode SuiteOptions.publishCount}. */
  publishCount: number;
  /** See {@linkcode SuiteOptions.restarts}. */
  restarts: number;
  /** See {@linkcode SuiteOptions.scaleTasks}. */
  scaleTasks: number;
  /** See {@linkcode SuiteOptions.clusterKills}. */
  clusterKills: number;
  /** See {@linkcode SuiteOptions.delayTasks}. */
  delayTasks: number;
  /** See {@linkcode SuiteOptions.maxDelayMs}. */
  maxDelayMs: number;
  /** See {@linkcode SuiteOptions.delayReps}. */
  delayReps: number;
  /** See {@linkcode SuiteOptions.calls}. */
  calls: number;
  /** See {@linkcode SuiteOptions.scenarios}. */
  scenarios: ScenarioName[];
  /** See {@linkcode SuiteOptions.systems}. */
  systems: SystemName[];
  /** See {@linkcode SuiteOptions.workerLogLevel}. */
  workerLogLevel?: string;
  /** See {@linkcode SuiteOptions.commandLine}. */
  commandLine?: string;
}

/** Throughput runs of one scenario, per variant, indexed by repetition (`undefined`: failed). */
export interface ThroughputResult {
  /** The scenario. */
  scenario: ThroughputScenario;
  /** Runs per variant key, one slot per repetition. */
  runs: RunsByVariant;
}

/** Publish runs, one slot per repetition (`undefined`: failed or not run). */
export interface PublishResult {
  /** The floor's raw confirm-channel publisher. */
  floor: (PublishRun | undefined)[];
  /** `producer.ts --count N`. */
  ours: (PublishRun | undefined)[];
  /** The library's `enqueueMany`. */
  library: (PublishRun | undefined)[];
  /** Why the library was not measured, when it was not. */
  libraryUnavailable?: string;
}

/** The scale scenario: a one-task baseline and the N-task run. */
export interface ScaleResult {
  /** `produce --count 1 --wait`. */
  baseline?: ScaleRun;
  /** `produce --count N --wait`. */
  run?: ScaleRun;
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

/** The original scenario, without and with a worker killed mid-run. */
export interface MakespanResult {
  /** Runs without a kill. */
  plain: MakespanRun[];
  /** Runs with one worker SIGKILLed mid-run. */
  killed: MakespanRun[];
}

/** The delays scenario's runs, one slot per repetition (`undefined`: failed). */
export interface DelaysResult {
  /** N tasks with mixed delays. */
  delayed: (DelaysRun | undefined)[];
  /** The same N tasks without a delay (the reference). */
  undelayed: (DelaysRun | undefined)[];
}

/** The call scenario's runs per system, one slot per repetition (`undefined`: failed, not run). */
export type CallResult = Record<CallSystem, (CallRun | undefined)[]>;

/** A scenario that could not run here, and why. */
export interface Skipped {
  /** Which. */
  scenario: ScenarioName | "publish (library)";
  /** Why, in one line. */
  why: string;
}

/** Everything one suite run measured. */
export interface SuiteResult {
  /** Where and when. */
  environment: Environment;
  /** The options in force. */
  options: ResolvedSuiteOptions;
  /** Throughput per scenario (empty when skipped). */
  throughput: ThroughputResult[];
  /** Publish rates (undefined when skipped). */
  publish?: PublishResult;
  /** Broker restarts (undefined when skipped). */
  recovery?: RecoveryRun[];
  /** The scale scenario (undefined when skipped). */
  scale?: ScaleResult;
  /** Failover (undefined when skipped). */
  failover?: FailoverResult;
  /** Start-up and memory (undefined when skipped). */
  startup?: StartupResult;
  /** The original scenario's runs (undefined when skipped). */
  makespan?: MakespanResult;
  /** Cluster node kills (undefined when skipped). */
  cluster?: ClusterKillRun[];
  /** Delayed tasks (undefined when skipped). */
  delays?: DelaysResult;
  /** `call`'s round trip against the floor and BullMQ (undefined when skipped). */
  call?: CallResult;
  /** Scenarios that could not run here. */
  skipped: Skipped[];
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
  const reps = options.reps ?? (quick ? 1 : 5);
  return {
    quick,
    tasks: options.tasks ?? (quick ? 50 : 10_000),
    reps,
    maxReps: Math.max(reps, options.maxReps ?? (quick ? reps : 2 * reps)),
    startupReps: options.startupReps ?? (quick ? 1 : Math.max(5, reps)),
    kills: options.kills ?? (quick ? 3 : 20),
    bullmqKills: options.bullmqKills ?? (quick ? 0 : 3),
    timeScale: options.timeScale ?? (quick ? 0.02 : 1),
    publishCount: options.publishCount ?? (quick ? 200 : 100_000),
    restarts: options.restarts ?? (quick ? 1 : 5),
    scaleTasks: options.scaleTasks ?? (quick ? 200 : 1_000_000),
    clusterKills: options.clusterKills ?? (quick ? 1 : 5),
    delayTasks: options.delayTasks ?? (quick ? 200 : 100_000),
    maxDelayMs: options.maxDelayMs ?? (quick ? 2_000 : 60_000),
    delayReps: options.delayReps ?? 1,
    calls: options.calls ?? (quick ? 20 : 1_000),
    scenarios: [...options.scenarios ?? DEFAULT_SCENARIOS],
    systems: [...options.systems ?? SYSTEMS],
    ...(options.workerLogLevel ? { workerLogLevel: options.workerLogLevel } : {}),
    ...(options.commandLine ? { commandLine: options.commandLine } : {}),
  };
}

function firstLine(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message.split("\n")[0]}` : String(error);
}

/** Whether another repetition could still change a verdict of `result`'s goals. */
export function verdictOpen(result: ThroughputResult): boolean {
  const { scenario, runs } = result;
  const reps = repetitions(runs);
  const open: boolean[] = [];
  if (runs.ours && runs[scenario.floor]) {
    open.push(straddles(
      ratiosPerRep(
        reps,
        (r) => consumerCpuPerTask(runs, "ours", r),
        (r) => consumerCpuPerTask(runs, scenario.floor, r),
      ),
      CPU_GOAL,
    ));
    if (scenario.key !== "d") {
      open.push(straddles(
        ratiosPerRep(reps, (r) => rateOf(runs, "ours", r), (r) => rateOf(runs, scenario.floor, r)),
        THROUGHPUT_GOAL,
      ));
    }
  }
  if (scenario.key === "d" && runs.ours && scenario.bullmq.some((k) => runs[k])) {
    open.push(straddles(
      ratiosPerRep(
        reps,
        (r) => rateOf(runs, "ours", r),
        (r) => bestOf(runs, scenario.bullmq, r)?.rate,
      ),
      SHORT_GOAL,
    ));
  }
  return open.some(Boolean);
}

/** Per-repetition ratios of `key`'s publish rate to the floor's. */
export function publishRatios(p: PublishResult, key: "ours" | "library"): number[] {
  return ratiosPerRep(
    Math.max(p.floor.length, p[key].length),
    (r) => p[key][r]?.perSecond,
    (r) => p.floor[r]?.perSecond,
  );
}

/** Whether another repetition could still change a publish verdict (of a publisher that ran). */
export function publishVerdictOpen(p: PublishResult): boolean {
  return (["ours", "library"] as const).some((key) =>
    p[key].some(Boolean) && straddles(publishRatios(p, key), PUBLISH_GOAL)
  );
}

/**
 * Per-repetition ratios of our `call` round trip to `versus`'s, with `inFlight` calls in flight,
 * at percentile `pick`.
 */
export function callRatios(
  call: CallResult,
  inFlight: number,
  versus: "floor" | "bullmq",
  pick: "p50Ms" | "p99Ms" = "p50Ms",
): number[] {
  return ratiosPerRep(
    Math.max(call.ours.length, call[versus].length),
    (r) => call.ours[r]?.byInFlight[inFlight]?.[pick],
    (r) => call[versus][r]?.byInFlight[inFlight]?.[pick],
  );
}

/** Whether another repetition could still change a verdict of the call goals. */
export function callVerdictOpen(call: CallResult): boolean {
  if (!call.ours.some(Boolean)) return false;
  return CALL_IN_FLIGHT.some((k) =>
    (call.floor.some(Boolean) && straddles(callRatios(call, k, "floor"), CALL_FLOOR_GOAL)) ||
    (call.bullmq.some(Boolean) && straddles(callRatios(call, k, "bullmq"), CALL_BULLMQ_GOAL))
  );
}

/**
 * Runs the suite. A run that fails is recorded in `errors` and the suite goes on; a scenario that
 * cannot run here (a missing file or binary) is recorded in `skipped`.
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
  const skipped: Skipped[] = [];
  if (o.systems.includes("ours") && !await oursAvailable()) {
    o.systems = o.systems.filter((s) => s !== "ours");
    notes.push("Ours was skipped: worker.ts or producer.ts is missing.");
  }
  const has = (system: SystemName) => o.systems.includes(system);
  const wants = (scenario: ScenarioName) => o.scenarios.includes(scenario);
  const ours = o.workerLogLevel ? { workerLogLevel: o.workerLogLevel } : {};
  const environment = await describeEnvironment();
  const result: SuiteResult = {
    environment,
    options: o,
    throughput: [],
    skipped,
    errors,
    notes,
    finalLoadAverage: [],
  };

  /** Runs `fn`, recording a failure as an error line (or a skip) instead of throwing. */
  async function attempt<T>(
    what: string,
    fn: () => Promise<T>,
    scenario?: Skipped["scenario"],
  ): Promise<T | undefined> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof Unavailable && scenario) {
        skipped.push({ scenario, why: error.message });
        progress(`${what} skipped: ${error.message}`);
        return undefined;
      }
      errors.push(`${what}: ${firstLine(error)}`);
      progress(`${what} FAILED: ${firstLine(error)}`);
      return undefined;
    }
  }

  for (const scenario of THROUGHPUT_SCENARIOS) {
    if (!wants(scenario.key === "d" ? "short" : "throughput")) continue;
    const variants = scenario.variants.filter((v) => has(v.system));
    const runs: RunsByVariant = Object.fromEntries(variants.map((v) => [v.key, []]));
    const runner = (v: Variant): () => Promise<ThroughputRun> => {
      const shape = { ...v.shape, tasks: o.tasks };
      if (v.system === "ours") return () => runOursThroughput({ ...shape, ...ours });
      if (v.system === "bullmq") return () => runBullmqThroughput(shape);
      return () =>
        runFloorThroughput({ ...shape, fill: v.fill ?? "publishing", ack: v.ack ?? "each" });
    };
    const entry: ThroughputResult = { scenario, runs };
    for (let rep = 0; rep < o.maxReps; rep++) {
      if (rep >= o.reps && !verdictOpen(entry)) break;
      // Rotate the order each repetition so drift on a shared machine spreads evenly.
      const order = variants.map((_, i) => variants[(i + rep) % variants.length]!);
      for (const variant of order) {
        const what = `throughput ${scenario.key} ${variant.label} rep ${rep + 1}`;
        const run = await attempt(what, runner(variant));
        runs[variant.key]![rep] = run;
        if (run) {
          progress(`${what}: ${run.tasksPerSecond.toFixed(0)} tasks/s (load ${run.loadAverage})`);
        }
      }
    }
    result.throughput.push(entry);
  }

  if (wants("publish")) {
    const publish: PublishResult = { floor: [], ours: [], library: [] };
    const runners: [keyof Omit<PublishResult, "libraryUnavailable">, () => Promise<PublishRun>][] =
      [];
    if (has("floor")) runners.push(["floor", () => runFloorPublish(o.publishCount)]);
    if (has("ours")) {
      runners.push(["ours", () => runOursPublish(o.publishCount)]);
      runners.push(["library", () => runLibraryPublish(o.publishCount)]);
    }
    for (let rep = 0; rep < o.maxReps; rep++) {
      if (rep >= o.reps && !publishVerdictOpen(publish)) break;
      const order = runners.map((_, i) => runners[(i + rep) % runners.length]!);
      for (const [key, run] of order) {
        if (key === "library" && publish.libraryUnavailable !== undefined) continue;
        const what = `publish ${key} rep ${rep + 1}`;
        try {
          const measured = await run();
          publish[key][rep] = measured;
          progress(`${what}: ${measured.perSecond.toFixed(0)} messages/s`);
        } catch (error) {
          if (error instanceof Unavailable) {
            publish.libraryUnavailable = error.message;
            skipped.push({ scenario: "publish (library)", why: error.message });
            progress(`${what} skipped: ${error.message}`);
          } else {
            errors.push(`${what}: ${firstLine(error)}`);
            progress(`${what} FAILED: ${firstLine(error)}`);
          }
        }
      }
    }
    result.publish = publish;
  }

  if (wants("recovery") && has("ours")) {
    const runs = await attempt(
      "recovery",
      () => runRecovery({ restarts: o.restarts, onProgress: progress, ...ours }),
      "recovery",
    );
    if (runs) result.recovery = runs;
  }

  if (wants("scale") && has("ours")) {
    const scale: ScaleResult = {};
    const baseline = await attempt("scale baseline", () => runOursScale({ tasks: 1, ...ours }));
    if (baseline) scale.baseline = baseline;
    const run = await attempt("scale", () => runOursScale({ tasks: o.scaleTasks, ...ours }));
    if (run) {
      scale.run = run;
      progress(
        `scale: ${run.tasks} tasks, exit ${run.exitCode}, peak ${
          ((run.peakRssKiB ?? 0) / 1024).toFixed(0)
        } MiB`,
      );
    }
    result.scale = scale;
  }

  if (wants("failover")) {
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

  if (wants("startup")) {
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

  if (wants("makespan") && has("ours")) {
    const makespan: MakespanResult = { plain: [], killed: [] };
    for (let rep = 0; rep < o.reps; rep++) {
      for (const kill of [false, true]) {
        const what = `makespan ${kill ? "with a kill" : "without a kill"} rep ${rep + 1}`;
        const run = await attempt(
          what,
          () => runOursMakespan({ timeScale: o.timeScale, kill, ...ours }),
        );
        if (run) {
          makespan[kill ? "killed" : "plain"].push(run);
          progress(`${what}: ${run.makespanMs.toFixed(0)} ms`);
        }
      }
    }
    result.makespan = makespan;
  }

  if (wants("call")) {
    const call: CallResult = { ours: [], floor: [], bullmq: [] };
    const systems = CALL_SYSTEMS.filter(has);
    for (let rep = 0; rep < o.maxReps; rep++) {
      if (rep >= o.reps && !callVerdictOpen(call)) break;
      const order = systems.map((_, i) => systems[(i + rep) % systems.length]!);
      for (const system of order) {
        const what = `call ${system} rep ${rep + 1}`;
        const run = await attempt(
          what,
          () => runCall(system, { calls: o.calls, warmup: o.quick ? 5 : 50, ...ours }),
        );
        call[system][rep] = run;
        if (run) {
          const figures = CALL_IN_FLIGHT.map((k) =>
            `${k} in flight p50 ${run.byInFlight[k]!.p50Ms.toFixed(2)} ms`
          );
          progress(`${what}: ${figures.join(", ")}`);
        }
      }
    }
    result.call = call;
  }

  if (wants("delays") && has("ours")) {
    const delays: DelaysResult = { delayed: [], undelayed: [] };
    for (let rep = 0; rep < o.delayReps; rep++) {
      const modes = ["delayed", "undelayed"] as const;
      for (const mode of rep % 2 === 0 ? modes : [...modes].reverse()) {
        const what = `delays ${mode} rep ${rep + 1}`;
        const run = await attempt(
          what,
          () => runDelays({ tasks: o.delayTasks, maxDelayMs: o.maxDelayMs, mode, ...ours }),
        );
        delays[mode][rep] = run;
        if (run) {
          const late = run.lateness ? `, lateness p99 ${run.lateness.p99.toFixed(0)} ms` : "";
          progress(
            `${what}: publish ${run.publishPerSecond.toFixed(0)} tasks/s, delivery ` +
              `${run.deliveryPerSecond.toFixed(0)} tasks/s${late}`,
          );
        }
      }
    }
    result.delays = delays;
  }

  if (wants("cluster") && has("ours")) {
    const runs = await attempt(
      "cluster",
      () => runCluster({ kills: o.clusterKills, onProgress: progress, ...ours }),
      "cluster",
    );
    if (runs) result.cluster = runs;
  }
  result.finalLoadAverage = Deno.loadavg();
  return result;
}
