/**
 * A handler's progress reports, coalesced: `ctx.progress(value)` only checks the value and keeps it
 * as its task's latest, and every {@linkcode PROGRESS_INTERVAL_MS} the tasks whose value changed
 * report it once (a `task.progress` event, and a message to the caller of `producer.call`). A
 * handler that calls it a million times in a loop costs a million checks and assignments.
 * @module
 */
import { log } from "../log.ts";
import { progressJson } from "../results.ts";

/** How often the latest progress of each task goes out, in ms. */
export const PROGRESS_INTERVAL_MS = 100;

/** A progress value: a fraction from 0 to 1, or a small JSON object. */
export type ProgressValue = number | Record<string, unknown>;

/** What progress is reported for: a running task, which keeps its latest value until it is sent. */
export interface Reporting {
  /** The latest value not sent yet; `null` once the task ended. */
  progress: ProgressValue | undefined | null;
}

/** Coalesces progress reports; see the module doc. */
export class ProgressReports<T extends Reporting> {
  #send: (task: T, value: ProgressValue, json: string) => void;
  #pending = new Set<T>();
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Reports that `send` each task's latest value once per interval. */
  constructor(send: (task: T, value: ProgressValue, json: string) => void) {
    this.#send = send;
  }

  /**
   * Keeps `value` as the latest progress of `task`, to go out with the next interval.
   *
   * @throws {TypeError} for a number outside 0 to 1, or a value neither a number nor an object.
   */
  report(task: T, value: ProgressValue): void {
    if (typeof value === "number" ? !(value >= 0 && value <= 1) : !isObject(value)) {
      throw new TypeError(
        `Invalid progress ${typeof value === "number" ? value : typeof value}: expected a ` +
          "number from 0 to 1 or an object",
      );
    }
    if (task.progress === null) return; // It ended: nothing more goes out.
    task.progress = value;
    this.#pending.add(task);
    this.#timer ??= setInterval(() => this.flush(), PROGRESS_INTERVAL_MS);
  }

  /** The task ended: what it reported and was not sent is dropped (its end says more). */
  end(task: T): void {
    if (task.progress === undefined) return;
    task.progress = null;
    this.#pending.delete(task);
  }

  /** Sends the latest value of each task that reported since the last interval. */
  flush(): void {
    if (this.#pending.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const tasks = [...this.#pending];
    this.#pending.clear();
    for (const task of tasks) {
      const value = task.progress;
      if (value === undefined || value === null) continue;
      task.progress = undefined;
      let json: string;
      try {
        json = progressJson(value); // An object too large, or not JSON, is dropped here.
      } catch (error) {
        log("handler").warn("Progress dropped: {reason}", { reason: (error as Error).message });
        continue;
      }
      this.#send(task, value, json);
    }
  }

  /** Stops the interval; what was not sent is dropped. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
