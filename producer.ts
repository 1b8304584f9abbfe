/**
 * The producer: publishes tasks as persistent messages through a confirm channel and exits 0 only
 * once the broker has confirmed every one. Run `deno task produce --help` for flags.
 * @module
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { runMain } from "./lib/cli.ts";
import { parseProducerArgs, PRODUCER_HELP, type ProducerConfig } from "./lib/config.ts";
import { describe, openConnection } from "./lib/connection.ts";
import { TareasError } from "./lib/errors.ts";
import { subscribeEvents, type TareasEvent } from "./lib/events.ts";
import { log } from "./lib/log.ts";
import { Progress } from "./lib/render/progress.ts";
import { renderSummary } from "./lib/render/summary.ts";
import { renderTimelineSvg } from "./lib/render/timeline_svg.ts";
import { renderTimelineText } from "./lib/render/timeline_text.ts";
import { summarize } from "./lib/summary.ts";
import { createTask, encodeTask, randomComplexity, type Task } from "./lib/task.ts";
import { buildTimeline } from "./lib/timeline.ts";
import { declareTopology } from "./lib/topology.ts";
import { startPublishSpan } from "./lib/trace.ts";

/** Publishes the tasks, and with `--wait` watches them complete; resolves with the exit code. */
async function produce(config: ProducerConfig): Promise<number> {
  const logger = log("producer");
  const tasks = Array.from(
    { length: config.count },
    (_, i) => createTask(i + 1, randomComplexity(config.min, config.max)),
  );
  const ids = new Set(tasks.map((task) => task.id));
  const unconfirmed = new Map(tasks.map((task) => [task.id, task]));
  const spans = new Map(tasks.map((task) => [task.id, startPublishSpan(config.queue, task)]));
  const confirmed = Promise.withResolvers<void>();
  if (unconfirmed.size === 0) confirmed.resolve();

  const events: TareasEvent[] = [];
  const finished = Promise.withResolvers<void>();
  const encoder = new TextEncoder();
  const progress = config.wait
    ? new Progress({
      total: tasks.length,
      isTty: Deno.stdout.isTerminal(),
      write: (text) => Deno.stdout.writeSync(encoder.encode(text)),
    })
    : undefined;
  const watchQueue = `${config.queue}.watch.${crypto.randomUUID()}`;
  let channel: ConfirmChannel | undefined;

  /** Publishes every task not confirmed yet; after a reconnect, again on the new channel. */
  async function publishAll(publish: ConfirmChannel): Promise<void> {
    for (const task of [...unconfirmed.values()]) {
      if (channel !== publish) return; // The connection dropped: the next setup takes over.
      if (!unconfirmed.has(task.id)) continue;
      let buffered: boolean;
      try {
        buffered = publish.sendToQueue(config.queue, encodeTask(task), {
          persistent: true,
          messageId: task.id,
          contentType: "application/json",
          timestamp: Math.floor(Date.now() / 1000),
          headers: { traceparent: spans.get(task.id)!.traceparent },
        }, (error) => onConfirm(publish, task, error));
      } catch {
        return; // Channel closed: the next setup publishes what is still unconfirmed.
      }
      if (!buffered) {
        await new Promise((resolve) => {
          publish.once("drain", resolve);
          publish.once("close", resolve);
        });
      }
    }
  }

  function onConfirm(publish: ConfirmChannel, task: Task, error: unknown): void {
    if (!error) {
      unconfirmed.delete(task.id);
      spans.get(task.id)!.span.end();
      if (unconfirmed.size === 0) confirmed.resolve();
    } else if (channel === publish) {
      // Refused by a live broker (not a dropped channel): report it rather than loop.
      confirmed.reject(
        new TareasError(`The broker refused task #${task.seq} ${task.id} (basic.nack)`, 1),
      );
    }
  }

  const done = new Set<string>(); // Completed or dead-lettered.
  const dead = new Set<string>();
  const showProgress = () => progress?.update({ done: done.size, failed: dead.size });

  function onEvent(event: TareasEvent): void {
    if ("taskId" in event && !ids.has(event.taskId)) return; // Another producer's task.
    events.push(event);
    if (event.type !== "task.completed" && event.type !== "task.dead") return;
    done.add(event.taskId);
    if (event.type === "task.dead") dead.add(event.taskId);
    if (done.size === ids.size) {
      showProgress();
      finished.resolve();
    }
  }

  async function setup(model: ChannelModel): Promise<void> {
    const publish = await model.createConfirmChannel();
    publish.on(
      "error",
      (error: Error) => logger.debug("Publish channel failed: {cause}", { cause: describe(error) }),
    );
    await declareTopology(publish, config.queue);
    if (config.wait) {
      const watch = await model.createChannel();
      watch.on("error", () => {});
      await subscribeEvents(watch, config.queue, onEvent, { queueName: watchQueue });
    }
    channel = publish;
    if (unconfirmed.size < tasks.length) {
      logger.info("Publishing again the {count} unconfirmed task(s)", { count: unconfirmed.size });
    }
    publishAll(publish).catch((error) => confirmed.reject(error));
  }

  await using connection = await openConnection({
    url: config.url,
    heartbeat: config.heartbeat,
    name: "tareas producer",
    setup,
  });
  const started = performance.now();
  await Promise.race([confirmed.promise, connection.failed]);
  logger.info("Published {count} task(s) to {queue}, all confirmed by the broker in {ms} ms", {
    count: tasks.length,
    queue: config.queue,
    ms: Math.round(performance.now() - started),
  });
  if (!config.wait) return 0;

  if (tasks.length === 0) finished.resolve();

  const ticker = setInterval(showProgress, 500);
  const timeout = config.timeoutMs > 0
    ? AbortSignal.timeout(config.timeoutMs)
    : new AbortController().signal;
  const timedOut = new Promise<never>((_, reject) =>
    timeout.addEventListener("abort", () => {
      const summary = summarize(events, ids);
      reject(
        new TareasError(
          `Timed out after ${config.timeoutMs / 1000} s: ${summary.completed}/${tasks.length} ` +
            `tasks completed`,
          1,
        ),
      );
    })
  );
  try {
    await Promise.race([finished.promise, connection.failed, timedOut]);
  } finally {
    clearInterval(ticker);
    progress?.finish();
  }
  const timeline = buildTimeline(events);
  console.log(renderSummary(summarize(events, ids)));
  console.log(renderTimelineText(timeline, { color: Deno.stdout.isTerminal() }));
  if (config.timeline) {
    await Deno.writeTextFile(config.timeline, renderTimelineSvg(timeline));
    logger.info("Timeline written to {file}", { file: config.timeline });
  }
  return 0;
}

if (import.meta.main) {
  await runMain("producer", {
    parse: () => parseProducerArgs(Deno.args),
    help: PRODUCER_HELP,
    run: produce,
  });
}
