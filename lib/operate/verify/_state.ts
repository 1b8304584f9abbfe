/**
 * What a verify run has done and heard so far, shared by its phases (`_run.ts`, `_faults.ts`):
 * the tasks it meant to publish and those confirmed, the results and events heard, what each
 * worker's events say it holds, and the losses it caused.
 * @module
 */
import type { TareasEvent } from "../../core/events.ts";
import type { TaskResult } from "../../core/results.ts";
import type { QueueState } from "../../observe/watch.ts";
import type { WorkerPool } from "./workers.ts";
import type { Fault, KillRecord, Published, VerifyReport } from "./types.ts";

/** Per worker, what its events say. */
export interface WorkerView {
  online: boolean;
  offline: boolean;
  /** Tasks it started and has not finished: when each started (epoch ms, by its event). */
  open: Map<string, number>;
  /** Its last `worker.status` report of deliveries in hand, and when it was heard. */
  inHand: number | undefined;
  heardAt: number;
}

/** The state of one run; its phases read and write the fields directly. */
export class RunState {
  published: Published[] = [];
  /** Each task's simulated work, in ms. */
  workMs = new Map<string, number>();
  expected = new Set<string>();
  confirmed = new Set<string>();
  refused = new Map<string, string>();
  results = new Map<string, TaskResult>();
  events: TareasEvent[] = [];
  views = new Map<string, WorkerView>();
  faults: Fault[] = [];
  kills: KillRecord[] = [];
  brokerKill: VerifyReport["brokerKill"];
  workerExits: VerifyReport["workerExits"] = [];
  queueState: { state: QueueState; heardAt: number } | undefined;
  lastActivity = Date.now();
  lastResultAt = 0;
  startedAt = 0;
  publishMs = 0;
  publishingDone = false;
  faultRunning = false;
  faultDone = false;
  failure: unknown;
  /** Resolves at the next update (see {@linkcode RunState.poke}). */
  wake = Promise.withResolvers<void>();
  /** Results of the run's tasks heard so far. */
  completedCount = 0;
  /** Confirmed tasks with no result yet. */
  missingCount = 0;

  /** Creates the state of a run of `tasks` tasks, each given its id. */
  constructor(tasks: number) {
    for (let seq = 1; seq <= tasks; seq++) {
      const task = { taskId: crypto.randomUUID(), seq };
      this.published.push(task);
      this.expected.add(task.taskId);
    }
  }

  /** What the events of worker `name` say, created empty the first time. */
  view(name: string): WorkerView {
    let view = this.views.get(name);
    if (view === undefined) {
      view = { online: false, offline: false, open: new Map(), inHand: undefined, heardAt: 0 };
      this.views.set(name, view);
    }
    return view;
  }

  /** Takes in an event heard from the watcher. */
  onEvent(event: TareasEvent): void {
    const view = this.view(event.worker);
    switch (event.type) {
      case "worker.online":
        view.online = true;
        view.open.clear(); // A reconnect: what it held went back to the queue.
        this.events.push(event);
        return;
      case "worker.offline":
        view.offline = true;
        return;
      case "worker.status":
        view.inHand = event.inHand;
        view.heardAt = Date.now();
        return;
      case "task.progress":
        return;
      case "task.started":
        view.open.set(event.taskId, Date.parse(event.at));
        break;
      default:
        view.open.delete(event.taskId);
    }
    this.events.push(event);
    this.lastActivity = Date.now();
  }

  /** Takes in a result heard through the producer's reply queue. */
  onResult(result: TaskResult): void {
    if (this.results.has(result.taskId)) return;
    this.results.set(result.taskId, result);
    if (this.expected.has(result.taskId)) {
      this.lastResultAt = Date.now();
      this.completedCount++;
    }
    if (this.confirmed.has(result.taskId)) this.missingCount--;
    this.lastActivity = Date.now();
    this.poke();
  }

  /**
   * Whether the run is idle with tasks missing: nothing ready in the queue and no worker holding
   * anything (its last status report, heard since the last task event, says 0 in hand).
   */
  settled(pool: WorkerPool): boolean {
    const queue = this.queueState;
    if (queue === undefined || queue.heardAt <= this.lastActivity) return false;
    if (queue.state.declared !== true || queue.state.counts?.ready !== 0) return false;
    return pool.alive.every((worker) => {
      const view = this.views.get(worker.name);
      return view !== undefined && view.online && view.open.size === 0 && view.inHand === 0 &&
        view.heardAt > this.lastActivity;
    });
  }

  /** The position of task `taskId` in the run, or "?". */
  seqOf(taskId: string): number | string {
    return this.published.find((task) => task.taskId === taskId)?.seq ?? "?";
  }

  /** Wakes whoever waits on {@linkcode RunState.wake}. */
  poke(): void {
    this.wake.resolve();
    this.wake = Promise.withResolvers();
  }
}
