/**
 * Progress reporting for `produce --wait`: a bar redrawn in place on a terminal, or plain
 * throttled lines in logs.
 * @module
 */

/** Options for {@linkcode Progress}. */
export interface ProgressOptions {
  /** How many tasks the run waits for. */
  total: number;
  /** Whether the output is a terminal: redraw one line in place rather than print lines. */
  isTty: boolean;
  /** Where the output goes, e.g. text encoded to stderr. */
  write: (text: string) => void;
  /**
   * The clock, in milliseconds.
   * @default {Date.now}
   */
  now?: () => number;
  /**
   * Least time between two plain lines when not on a terminal, in milliseconds.
   * @default {2000}
   */
  intervalMs?: number;
  /**
   * Least time between two redraws on a terminal, in milliseconds.
   * @default {100}
   */
  redrawMs?: number;
  /**
   * Cells of the bar drawn on a terminal.
   * @default {10}
   */
  barWidth?: number;
  /**
   * Width of the terminal: a longer line is cut to fit, since a line that wraps cannot be
   * redrawn in place.
   * @default {no limit}
   */
  columns?: number;
}

/** The counts {@linkcode Progress.update} takes. */
export interface ProgressCounts {
  /** Tasks completed so far; with the dead-lettered ones, what the bar, rate and ETA count. */
  completed: number;
  /** Tasks dead-lettered so far: finished too, but not completed. */
  deadLettered: number;
  /**
   * What the running tasks report, shown after the counts until the end, e.g.
   * `running: #3 40%, #7 75%`. @default {""}
   */
  detail?: string;
}

/**
 * Reports the progress of a run towards a number of tasks. On a terminal it redraws one line in
 * place (`\r`, clear line): `[██████░░░░] 6/10 completed  0 dead-lettered  2.1/s  ETA 2s`, and ends it with a
 * newline on {@linkcode Progress.finish}. Elsewhere it writes
 * `progress: 6/10 completed, 0 dead-lettered, 2.1 tasks/s, ETA 2s` lines at most once per `intervalMs`,
 * and always a last line (`…, took 4.8s`) on finish. What the running tasks report
 * ({@linkcode ProgressCounts.detail}) follows the counts until the end. The rate is `done` over the time since
 * construction; the ETA is the remaining tasks over the rate (`ETA ?` while the rate is 0).
 *
 * An update that falls inside the throttle interval is shown by the next update or by
 * `finish()`: call `update()` from a timer too if the line should move while no task ends.
 *
 * @example
 * ```ts
 * const encoder = new TextEncoder();
 * const progress = new Progress({
 *   total: 10,
 *   isTty: Deno.stderr.isTerminal(),
 *   write: (text) => Deno.stderr.writeSync(encoder.encode(text)),
 * });
 * progress.update({ completed: 6, deadLettered: 0 });
 * progress.finish();
 * ```
 */
export class Progress {
  #total: number;
  #isTty: boolean;
  #write: (text: string) => void;
  #now: () => number;
  #intervalMs: number;
  #barWidth: number;
  #columns: number;
  #startMs: number;
  #lastWriteMs: number;
  #lastLine = "";
  #counts: ProgressCounts = { completed: 0, deadLettered: 0 };
  #finished = false;

  /** Starts the clock; writes nothing until the first update. */
  constructor(options: ProgressOptions) {
    if (!Number.isInteger(options.total) || options.total < 0) {
      throw new RangeError(`Invalid progress total: ${options.total}`);
    }
    this.#total = options.total;
    this.#isTty = options.isTty;
    this.#write = options.write;
    this.#now = options.now ?? Date.now;
    this.#intervalMs = options.isTty ? options.redrawMs ?? 100 : options.intervalMs ?? 2000;
    this.#barWidth = Math.max(1, Math.floor(options.barWidth ?? 10));
    this.#columns = Math.max(20, Math.floor(options.columns ?? Infinity));
    this.#startMs = this.#now();
    // A terminal shows the first update at once; logs get a first line after one interval.
    this.#lastWriteMs = options.isTty ? -Infinity : this.#startMs;
  }

  /** Records the latest counts, and writes them unless the last write is too recent. */
  update(counts: ProgressCounts): void {
    if (this.#finished) return;
    this.#counts = {
      completed: clampCount(counts.completed),
      deadLettered: clampCount(counts.deadLettered),
      detail: counts.detail ?? "",
    };
    const now = this.#now();
    if (now - this.#lastWriteMs < this.#intervalMs) return;
    this.#emit(now, false);
  }

  /** On a terminal, erases the line drawn in place (to write something else there). */
  clear(): void {
    if (this.#isTty && this.#lastLine !== "" && !this.#finished) this.#write("\r\x1b[2K");
  }

  /** On a terminal, draws the last line again after {@linkcode Progress.clear}. */
  redraw(): void {
    if (this.#isTty && this.#lastLine !== "" && !this.#finished) {
      this.#write(`\r\x1b[2K${this.#lastLine}`);
    }
  }

  /** Writes the final line (ending the terminal line); later calls and updates do nothing. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#emit(this.#now(), true);
  }

  #emit(now: number, final: boolean): void {
    this.#lastWriteMs = now;
    const { completed, deadLettered } = this.#counts;
    // Once finished, nothing runs any more: the last line has the counts only.
    const detail = final || !this.#counts.detail ? "" : this.#counts.detail;
    const done = completed + deadLettered;
    const elapsedMs = Math.max(0, now - this.#startMs);
    const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
    const remaining = Math.max(0, this.#total - done);
    const eta = final
      ? `took ${formatElapsed(elapsedMs)}`
      : `ETA ${
        remaining === 0 ? "0s" : rate === 0 ? "?" : formatDuration((remaining / rate) * 1000)
      }`;
    if (!this.#isTty) {
      this.#write(
        `progress: ${completed}/${this.#total} completed, ${deadLettered} dead-lettered, ` +
          `${formatRate(rate)} tasks/s, ` +
          `${eta}${detail === "" ? "" : `, ${detail}`}\n`,
      );
      return;
    }
    const fraction = this.#total === 0 ? 1 : Math.min(1, done / this.#total);
    const filled = Math.floor(fraction * this.#barWidth);
    const bar = "█".repeat(filled) + "░".repeat(this.#barWidth - filled);
    let line = `[${bar}] ${completed}/${this.#total} completed  ${deadLettered} dead-lettered  ` +
      `${formatRate(rate)}/s  ${eta}${detail === "" ? "" : `  ${detail}`}`;
    if (line.length >= this.#columns) line = `${line.slice(0, this.#columns - 2)}…`;
    if (!final && line === this.#lastLine) return;
    this.#lastLine = line;
    this.#write(`\r\x1b[2K${line}${final ? "\n" : ""}`);
  }
}

function clampCount(count: number): number {
  return Number.isFinite(count) ? Math.max(0, Math.floor(count)) : 0;
}

/** One decimal below 100 per second, none above: `2.1`, `340`. */
function formatRate(rate: number): string {
  return rate >= 100 ? String(Math.round(rate)) : rate.toFixed(1);
}

/** Whole seconds rounded up: `2s`, `1m05s`, `2h03m`. */
function formatDuration(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${pad(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h${pad(Math.floor(seconds / 60) % 60)}m`;
}

/** Tenths of a second below a minute, else as {@linkcode formatDuration}: `4.8s`. */
function formatElapsed(ms: number): string {
  return ms < 59_950 ? `${(ms / 1000).toFixed(1)}s` : formatDuration(ms);
}

function pad(value: number): string {
  return String(value).padStart(2, "0");
}
