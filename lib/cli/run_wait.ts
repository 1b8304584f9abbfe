/**
 * What `produce --wait` does: follows the run's events from before its first task is published,
 * then, once they are published, shows progress (with what the running tasks report) until every
 * task has completed or been dead-lettered, and with `--results` until every task's result line
 * is written, says when nothing is consuming the queue, and ends with the run's summary and
 * timeline and an exit code that tells the truth.
 * @module
 */
import { onStopSignals } from "./main.ts";
import { TareasError } from "../core/errors.ts";
import { holdTerminalLine, log } from "../core/log.ts";
import { printable } from "../core/text.ts";
import { Progress } from "../observe/render/progress.ts";
import { renderSummary } from "../observe/render/summary.ts";
import { renderTimelineSvg } from "../observe/render/timeline_svg.ts";
import { renderTimelineText } from "../observe/render/timeline_text.ts";
import { RunRecord } from "../observe/run_record.ts";
import { RunningTasks } from "../observe/running.ts";
import type { ResultsFile } from "./output_files.ts";
import { runningSummary } from "./progress_text.ts";
import { type QueueState, type QueueWatcher, watchQueue } from "../observe/watch.ts";
import { isTaskEvent, type TareasEvent } from "../core/events.ts";

/** Exit code of `produce --wait` when every task finished but some were dead-lettered. */
export const EXIT_DEAD_LETTERED = 3;

/** How often `--wait` checks that something consumes the queue, in ms. */
const CONSUMER_CHECK_MS = 2_000;

/** Options of {@linkcode RunWatch.open}. */
export interface RunWatchOptions {
  /** Broker URL. */
  url: string;
  /** The work queue the run's tasks are published to. */
  queue: string;
  /** AMQP heartbeat in seconds, 0 to disable. */
  heartbeat: number;
}

/** Options of {@linkcode RunWatch.wait}. */
export interface RunWaitOptions {
  /** Give up after this many ms, 0 for never. */
  timeoutMs: number;
  /** Write the timeline as SVG to this file. */
  timeline?: string | undefined;
  /** The `--results` file: the run ends once it has a line for every task. */
  results?: ResultsFile | undefined;
}

/**
 * A run followed through a durable watcher, so that no event of it is missed even across
 * reconnects: every event goes into {@linkcode RunWatch.record} as it arrives, while the tasks are
 * being published and while they are waited for.
 */
export class RunWatch implements AsyncDisposable {
  /** The run's record: give it each task's id before the task is published (`expect`). */
  readonly record: RunRecord = new RunRecord([]);
  /** The run's tasks being run, with their latest progress. */
  #running = new RunningTasks();
  #queue: string;
  #watcher: QueueWatcher;
  #following: Promise<void>;
  #onState: (state: QueueState) => void = () => {};

  /** Subscribes to the events of `options.queue`; resolves once nothing can be missed. */
  static async open(options: RunWatchOptions): Promise<RunWatch> {
    const watcher = await watchQueue({
      url: options.url,
      queue: options.queue,
      heartbeat: options.heartbeat,
      durable: true,
      countsEveryMs: CONSUMER_CHECK_MS,
    });
    return new RunWatch(options.queue, watcher);
  }

  private constructor(queue: string, watcher: QueueWatcher) {
    this.#queue = queue;
    this.#watcher = watcher;
    this.#following = (async () => {
      for await (const update of watcher) {
        if (update.kind === "event") this.#observe(update.event);
        else this.#onState(update.state);
      }
    })();
    this.#following.catch(() => {}); // wait() reports it
  }

  #observe(event: TareasEvent): void {
    this.record.record(event);
    if (!isTaskEvent(event)) return;
    // Only the run's own tasks, and not one that has finished (its progress may come late).
    if (event.type === "task.started" || event.type === "task.progress") {
      const outcome = this.record.outcome(event.taskId);
      if (outcome === undefined || outcome.completions > 0 || outcome.dead) return;
    }
    this.#running.observe(event);
  }

  /**
   * Waits until every task of the record has completed or been dead-lettered, then prints the
   * summary and the timeline. Resolves with the exit code: 0 when every task completed,
   * {@linkcode EXIT_DEAD_LETTERED} when some were dead-lettered (the summary lists them with
   * their reasons), 1 when a first SIGINT or SIGTERM stopped the wait (a second one exits at
   * once).
   *
   * @throws {TareasError} when `timeoutMs` passes first, or the watcher's connection gives up.
   */
  async wait(options: RunWaitOptions): Promise<number> {
    const { progress, isTty } = openProgress(this.record.counts().total);
    const release = holdTerminalLine(progress);
    const ended = Promise.withResolvers<"finished" | "interrupted">();
    const { results } = options;
    const tick = () => {
      if (this.#tick(progress, { isTty, results })) ended.resolve("finished");
    };
    const ticker = setInterval(tick, 200);
    this.#onState = this.#consumerWarning();
    const failed = new Promise<never>((_, reject) => this.#following.catch(reject));
    const signals = onStopSignals(() => ended.resolve("interrupted"), () => Deno.exit(1));
    const timedOut = this.#timedOut(options);
    let end: "finished" | "interrupted";
    try {
      tick();
      end = await Promise.race([
        ended.promise,
        failed,
        timedOut,
        ...(results === undefined ? [] : [results.failed]),
      ]);
    } finally {
      clearInterval(ticker);
      this.#onState = () => {};
      signals.remove();
      tick();
      release();
      progress.finish();
    }
    return await this.#conclude(end, options.timeline);
  }

  /** Shows the progress; true once every task has finished (and has its result line). */
  #tick(
    progress: Progress,
    options: { isTty: boolean; results: ResultsFile | undefined },
  ): boolean {
    const { completed, deadLettered, missing, total } = this.record.counts();
    const detail = runningSummary(this.#running.tasks(), options.isTty ? 50 : 200);
    progress.update({ completed, deadLettered, detail });
    const { results } = options;
    return missing === 0 && (results === undefined || results.written >= total);
  }

  /** A listener of the queue's state that warns when nothing consumes it. */
  #consumerWarning(): (state: QueueState) => void {
    const logger = log("producer");
    // Say it once, and again only once a worker has consumed or been heard of since.
    let warnedAt: number | undefined;
    return ({ counts }) => {
      if (counts === undefined) return; // not declared, or disconnected: nothing to tell
      const { events } = this.record.counts();
      if (counts.consumers > 0) {
        warnedAt = undefined;
      } else if (warnedAt === undefined || events > warnedAt) {
        warnedAt = events;
        logger.warn(
          "Nothing is consuming {queue}: start a worker with: deno task work --queue {queue}",
          { queue: printable(this.#queue) },
        );
      }
    };
  }

  /** Rejects once `options.timeoutMs` has passed; never settles for 0. */
  #timedOut(options: RunWaitOptions): Promise<never> {
    const { results } = options;
    const timeout = options.timeoutMs > 0 ? AbortSignal.timeout(options.timeoutMs) : undefined;
    return new Promise<never>((_, reject) =>
      timeout?.addEventListener("abort", () => {
        const { completed, total } = this.record.counts();
        const written = results === undefined ? "" : `, ${results.written} result(s) written`;
        reject(
          new TareasError(
            `Timed out after ${options.timeoutMs / 1000} s: ${completed}/${total} tasks ` +
              `completed${written}`,
          ),
        );
      })
    );
  }

  /** Prints the summary and the timeline (and writes it to `timeline`); returns the exit code. */
  async #conclude(end: "finished" | "interrupted", timeline?: string): Promise<number> {
    const logger = log("producer");
    const summary = this.record.summary();
    const events = this.record.timeline();
    console.log(renderSummary(summary));
    console.log(renderTimelineText(events, { color: Deno.stdout.isTerminal() }));
    if (timeline) {
      await Deno.writeTextFile(timeline, renderTimelineSvg(events));
      logger.info("Timeline written to {file}", { file: timeline });
    }
    if (end === "interrupted") {
      logger.warn("Stopped waiting: {missing} task(s) not finished yet stay queued", {
        missing: summary.missing,
      });
      return 1;
    }
    return summary.deadLettered > 0 ? EXIT_DEAD_LETTERED : 0;
  }

  /** Stops following the run and deletes its subscription queue. Idempotent. */
  async close(): Promise<void> {
    await this.#watcher.close();
    await this.#following.catch(() => {});
  }

  /** Same as {@linkcode RunWatch.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The progress line on stdout, and whether stdout is a terminal. */
function openProgress(total: number): { progress: Progress; isTty: boolean } {
  const encoder = new TextEncoder();
  const isTty = Deno.stdout.isTerminal();
  // A terminal whose size nobody set (a pseudo-terminal started by a program) says 0 columns.
  const columns = isTty ? Deno.consoleSize().columns || undefined : undefined;
  const progress = new Progress({
    total,
    isTty,
    write: (text) => Deno.stdout.writeSync(encoder.encode(text)),
    ...(columns === undefined ? {} : { columns }),
  });
  return { progress, isTty };
}
