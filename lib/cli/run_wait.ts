/**
 * What `produce --wait` does once its tasks are published: shows progress until every task has
 * completed or been dead-lettered, says when nothing is consuming the queue, and ends with the
 * run's summary and timeline and an exit code that tells the truth.
 * @module
 */
import { onStopSignals } from "./main.ts";
import { TareasError } from "../core/errors.ts";
import { holdTerminalLine, log } from "../core/log.ts";
import { Progress } from "../observe/render/progress.ts";
import { renderSummary } from "../observe/render/summary.ts";
import { renderTimelineSvg } from "../observe/render/timeline_svg.ts";
import { renderTimelineText } from "../observe/render/timeline_text.ts";
import type { RunRecord } from "../observe/run_record.ts";
import { printable } from "../core/text.ts";
import type { EventWatch } from "../observe/watch.ts";

/** Exit code of `produce --wait` when every task finished but some were dead-lettered. */
export const EXIT_DEAD_LETTERED = 3;

/** How often `--wait` checks that something consumes the queue, in ms. */
const CONSUMER_CHECK_MS = 2_000;

/** Options of {@linkcode waitForRun}. */
export interface RunWaitOptions {
  /** The work queue, named in the hint to start a worker. */
  queue: string;
  /** Give up after this many ms, 0 for never. */
  timeoutMs: number;
  /** Write the timeline as SVG to this file. */
  timeline?: string | undefined;
}

/**
 * Waits until every task of `record` has completed or been dead-lettered, then prints the summary
 * and the timeline. Resolves with the exit code: 0 when every task completed,
 * {@linkcode EXIT_DEAD_LETTERED} when some were dead-lettered (the summary lists them with their
 * reasons), 1 when a first SIGINT or SIGTERM stopped the wait (a second one exits at once).
 *
 * @throws {TareasError} when `timeoutMs` passes first, or the watch's connection gives up.
 */
export async function waitForRun(
  record: RunRecord,
  watch: EventWatch,
  options: RunWaitOptions,
): Promise<number> {
  const logger = log("producer");
  const encoder = new TextEncoder();
  const progress = new Progress({
    total: record.counts().total,
    isTty: Deno.stdout.isTerminal(),
    write: (text) => Deno.stdout.writeSync(encoder.encode(text)),
  });
  const release = holdTerminalLine(progress);
  const ended = Promise.withResolvers<"finished" | "interrupted">();
  const tick = () => {
    const { completed, deadLettered, missing } = record.counts();
    progress.update({ completed, deadLettered });
    if (missing === 0) ended.resolve("finished");
  };
  const ticker = setInterval(tick, 200);
  // Say it once, and again only once a worker has consumed or been heard of since.
  let warnedAt: number | undefined;
  const checker = setInterval(async () => {
    const counts = await watch.queueCounts();
    if (counts === undefined) return;
    const { events } = record.counts();
    if (counts.consumers > 0) {
      warnedAt = undefined;
    } else if (warnedAt === undefined || events > warnedAt) {
      warnedAt = events;
      logger.warn(
        "Nothing is consuming {queue}: start a worker with: deno task work --queue {queue}",
        { queue: printable(options.queue) },
      );
    }
  }, CONSUMER_CHECK_MS);
  const signals = onStopSignals(() => ended.resolve("interrupted"), () => Deno.exit(1));
  const timeout = options.timeoutMs > 0 ? AbortSignal.timeout(options.timeoutMs) : undefined;
  const timedOut = new Promise<never>((_, reject) =>
    timeout?.addEventListener("abort", () => {
      const { completed, total } = record.counts();
      reject(
        new TareasError(
          `Timed out after ${options.timeoutMs / 1000} s: ${completed}/${total} tasks completed`,
          1,
        ),
      );
    })
  );
  let end: "finished" | "interrupted";
  try {
    tick();
    end = await Promise.race([ended.promise, watch.failed, timedOut]);
  } finally {
    clearInterval(ticker);
    clearInterval(checker);
    signals.remove();
    tick();
    release();
    progress.finish();
  }
  const summary = record.summary();
  const timeline = record.timeline();
  console.log(renderSummary(summary));
  console.log(renderTimelineText(timeline, { color: Deno.stdout.isTerminal() }));
  if (options.timeline) {
    await Deno.writeTextFile(options.timeline, renderTimelineSvg(timeline));
    logger.info("Timeline written to {file}", { file: options.timeline });
  }
  if (end === "interrupted") {
    logger.warn("Stopped waiting: {missing} task(s) not finished yet stay queued", {
      missing: summary.missing,
    });
    return 1;
  }
  return summary.deadLettered > 0 ? EXIT_DEAD_LETTERED : 0;
}
