/**
 * The shapes of a verify run: what it publishes, the faults it causes, the runs it hears, its
 * verdict and its report. Every other module of `verify/` imports them from here.
 * @module
 */
import type { TareasEvent } from "../../core/events.ts";
import type { TaskResult } from "../../core/results.ts";
import type { WorkerCommand } from "./workers.ts";

/** Which broker a run uses, and what it does to it. */
export type BrokerMode = "given" | "restart" | "cluster";

/** The broker's product and version, as it announced them. */
export interface BrokerVersion {
  /** E.g. "RabbitMQ". */
  product: string;
  /** E.g. "3.10.8". */
  version: string;
}

/** A task verify meant to publish. */
export interface Published {
  /** Its id (the message's `messageId`). */
  taskId: string;
  /** Its position in the run, from 1. */
  seq: number;
}

/** A loss verify caused on purpose. */
export type Fault =
  | {
    /** A worker was SIGKILLed. */
    kind: "worker";
    /** Its name. */
    worker: string;
    /** When, in epoch ms (just before the signal was sent). */
    at: number;
  }
  | {
    /** The broker's node (`broker`), or the node leading the queue on a cluster (`node`), got kill -9. */
    kind: "broker" | "node";
    /** The node's name. */
    node: string;
    /** When verify began to kill it (it syncs the node's metadata first), in epoch ms. */
    from?: number;
    /** When, in epoch ms (once its processes had exited). */
    at: number;
    /** When it took connections again, in epoch ms. */
    until?: number;
  };

/** One run of a task on a worker, from its events. */
export interface Run {
  /** The worker that ran it. */
  worker: string;
  /** Its delivery's attempt number (1 for a first delivery). */
  attempt: number;
  /** Whether the broker flagged the delivery as a redelivery. */
  redelivered: boolean;
  /** When it started, in epoch ms. */
  startedAt: number;
  /** When it ended, in epoch ms; undefined when no event says it ended. */
  endedAt?: number;
  /** How it ended; undefined when no event says. */
  outcome?: "completed" | "failed" | "dead";
  /** Why it failed or died. */
  reason?: string;
}

/** A task run more than once, and whether a loss verify can name explains each extra run. */
export interface Duplicate extends Published {
  /** Its runs, in the order they started. */
  runs: Run[];
  /** Whether every run but the one that completed the task was cut short by a named loss. */
  explained: boolean;
  /** One line per run that needed explaining, saying what cut it short (or that nothing did). */
  why: string[];
}

/** What was left in the run's queues once its workers had stopped and its producer closed. */
export interface Census {
  /** Ids of the tasks still in the work queue. */
  queued: ReadonlySet<string>;
  /** The dead-letter queue's tasks: reason by id. */
  deadLettered: ReadonlyMap<string, string>;
  /** Results left unread in the reply queue. */
  results: readonly TaskResult[];
}

/** Everything the checker judges. */
export interface CheckInput {
  /** The tasks verify meant to publish, in order. */
  published: readonly Published[];
  /** Ids of those the broker confirmed. */
  confirmed: ReadonlySet<string>;
  /** Why the others were not confirmed, by id. */
  refused?: ReadonlyMap<string, string>;
  /** The results heard (one per task: the producer drops the second of a rerun). */
  results: readonly TaskResult[];
  /** Every event heard, in the order heard. */
  events: readonly TareasEvent[];
  /** The losses verify caused, in order. */
  faults: readonly Fault[];
  /** What was left in the queues at the end, when they were looked at. */
  census?: Census;
}

/** A task that did not complete, and how it ended instead. */
export interface Unfinished extends Published {
  /** Why (the dead-letter reason, or what was left of it). */
  reason: string;
}

/** The judgement of a run. */
export interface Verdict {
  /** Tasks verify meant to publish. */
  published: number;
  /** Tasks the broker confirmed. */
  confirmed: number;
  /** Confirmed tasks that completed. */
  completed: number;
  /** Confirmed tasks that never completed and are nowhere: not in any queue, not dead-lettered. */
  lost: Published[];
  /** Tasks dead-lettered, with the reason. */
  dead: Unfinished[];
  /** Tasks neither completed nor lost: still in the work queue, or waiting for a retry. */
  notRun: Unfinished[];
  /** Tasks the broker did not confirm, with why. */
  unconfirmed: Unfinished[];
  /** Ids of completions (results or events) of tasks verify never published. */
  unexpected: string[];
  /** Tasks run more than once, explained or not. */
  duplicates: Duplicate[];
  /** Tasks delivered more than once (the broker's redelivered flag on one of their runs). */
  redelivered: number;
  /** For each task in hand on a SIGKILLed worker: ms from the SIGKILL to its next start. */
  redeliveryMs: number[];
  /** For each task in hand when the broker (or leader) was killed: ms to its next start. */
  brokerRedeliveryMs: number[];
  /** Reconnects of workers that verify did not cause (a connection lost on its own). */
  reconnects: { worker: string; at: number }[];
  /** Nothing lost, dead, unconfirmed or unexpected, and every duplicate explained. */
  ok: boolean;
}

/**
 * Options of {@linkcode runVerify}.
 *
 * @example
 * ```ts
 * const options: VerifyOptions = {
 *   url: "amqp://guest:guest@127.0.0.1:5672",
 *   queue: "tareas_verify_1a2b3c4d",
 *   tasks: 1000, workers: 4, kills: 20, durationMs: { min: 10, max: 200 },
 *   prefetch: 1, concurrency: 1, heartbeat: 15, mode: "given",
 *   worker: workerCommand("deno run --allow-all worker.ts", "/repo/"),
 *   tareasVersion: "0.3.0",
 * };
 * ```
 */
export interface VerifyOptions {
  /** The broker at `AMQP_URL` (used when `mode` is `"given"`). */
  url: string;
  /** The run's queue: it must not exist; it is deleted at the end. */
  queue: string;
  /** Tasks to publish. */
  tasks: number;
  /** Workers running at once. */
  workers: number;
  /** SIGKILLs of a busy worker, spread evenly over the run. */
  kills: number;
  /** Simulated work of each task: a random whole number of ms from `min` to `max`. */
  durationMs: { min: number; max: number };
  /** `--prefetch` of each worker. */
  prefetch: number;
  /** `--concurrency` of each worker. */
  concurrency: number;
  /** AMQP heartbeat of every connection, in seconds. */
  heartbeat: number;
  /** The broker at `url`, or a private node (`restart`) or cluster (`cluster`) killed once. */
  mode: BrokerMode;
  /** How to run the worker program (`deno task work`'s command). */
  worker: WorkerCommand;
  /** The version of tareas, for the report. */
  tareasVersion: string;
  /** Aborting it stops the run and cleans up; `runVerify` then rejects with a {@linkcode VerifyStoppedError}. */
  signal?: AbortSignal;
  /** Hears a line of what happens, as it happens. */
  onNarrate?: (line: string) => void;
}

/** A SIGKILL of a worker, as the report shows it. */
export interface KillRecord {
  /** The worker killed. */
  worker: string;
  /** When, in ms since the first task was published. */
  atMs: number;
  /** The ids of the tasks it had started and not finished, by its events. */
  inHand: string[];
}

/** What a run found, for {@linkcode renderReport} (`report.ts`) or as JSON. */
export interface VerifyReport {
  /** What was asked. */
  settings: Omit<VerifyOptions, "url" | "worker" | "tareasVersion" | "signal" | "onNarrate">;
  /** The broker: what it is and the version it announced. */
  broker: BrokerVersion & { describe: string };
  /** The version of tareas. */
  tareas: string;
  /** The judgement. */
  verdict: Verdict;
  /** The SIGKILLs of workers, in order. */
  kills: KillRecord[];
  /** The kill -9 of the broker or the leader's node, when there was one. */
  brokerKill?: {
    /** `broker` or `node` (a cluster's queue leader). */
    kind: "broker" | "node";
    /** The node's name. */
    node: string;
    /** When, in ms since the first task was published. */
    atMs: number;
    /** How long from the kill until it took connections again. */
    restartMs: number;
  };
  /** How the run ended: every task heard of, idle with tasks missing, or nothing happening. */
  end: "completed" | "settled" | "stalled";
  /** Ms from the first task published to the last result heard. */
  elapsedMs: number;
  /** Ms to publish every task and have it confirmed. */
  publishMs: number;
  /** Workers that exited on their own (not killed or stopped by verify), with their last lines. */
  workerExits: { worker: string; code: number; tail: string[] }[];
  /** Names of workers verify did not start whose events it heard (something else consumes). */
  foreignWorkers: string[];
}
