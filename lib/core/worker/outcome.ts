/**
 * The end of a delivery that did not simply complete: a failed attempt waits in the delays'
 * ladder and comes back, a task whose attempts are used up, that failed for good (a
 * `PermanentError`) or that is not a task is copied to the dead-letter queue with its reason, and
 * only once the broker has confirmed that copy (and told a caller waiting for its result) is the
 * delivery acked. A task that arrives before its time goes back to the ladder. When tareas cannot publish the copy itself, the delivery is rejected and the
 * queue's own dead-lettering moves it. A delivery whose channel is gone is left to the broker,
 * which has requeued it already. Every path emits its event (`task.failed`, `task.dead`).
 * @module
 */
import type { ConfirmChannel, ConsumeMessage } from "../../deps/amqplib.ts";
import type { Logger } from "../../deps/logtape.ts";
import { isChannelClosed } from "../broker_errors.ts";
import { isoTime } from "../clock.ts";
import { errorMessage, isPermanentError } from "../errors.ts";
import { MAX_REASON, type TareasEvent } from "../events.ts";
import { afterFailure, type Attempt, republishProperties } from "../rules.ts";
import { AWAITED_HEADER } from "../task.ts";
import { declareDelays, publishDelayed } from "../delays.ts";
import { encodeDead, isReplyQueueOf, publishReply, RESULT_TYPE } from "../results.ts";
import { deadQueue } from "../topology.ts";
import type { Delivery, DeliveryFields } from "./delivery.ts";

/** What {@linkcode Outcomes} acts with. */
export interface OutcomeOptions {
  /** The work queue. */
  queue: string;
  /** The worker's name, in events and dead letters. */
  worker: string;
  /** Attempts before a failing task is dead-lettered. */
  maxAttempts: number;
  /** Delay before the first retry, in ms; it doubles on each retry. */
  retryDelayMs: number;
  /** Emits a lifecycle event. */
  emit: (event: TareasEvent) => void;
  /** The worker's logger. */
  logger: Logger;
}

/** Acks a finished delivery on its session (after the events someone waits for). */
export function ack({ session, message }: Delivery): void {
  session.acks.ack(message, message.properties.headers?.[AWAITED_HEADER] === true);
}

/** The ends of a delivery other than completion; see the module doc. */
export class Outcomes {
  #options: OutcomeOptions;

  /** Outcomes for the deliveries of one worker. */
  constructor(options: OutcomeOptions) {
    this.#options = options;
  }

  /**
   * A failed attempt: retried after its backoff, or dead-lettered once `maxAttempts` attempts
   * have run.
   */
  failed(
    delivery: Delivery,
    fields: DeliveryFields,
    attempt: Attempt,
    durationMs: number,
    error: unknown,
  ): Promise<void> {
    const { logger, maxAttempts, retryDelayMs } = this.#options;
    const reason = errorMessage(error).slice(0, MAX_REASON - 100);
    if (isPermanentError(error)) {
      logger.error("Task #{seq} {taskId} failed for good, dead-lettered: {reason}", {
        ...fields,
        reason,
      });
      return this.deadLetter(delivery, fields, reason, durationMs);
    }
    const next = afterFailure(attempt.attempt, { maxAttempts, retryDelayMs });
    if (next.action === "retry") {
      return this.retry(delivery, fields, reason, durationMs, next.delayMs);
    }
    logger.error("Task #{seq} {taskId} failed on attempt {attempt}, dead-lettered: {reason}", {
      ...fields,
      reason,
    });
    return this.deadLetter(
      delivery,
      fields,
      `${reason} (after ${attempt.attempt} attempts)`,
      durationMs,
    );
  }

  /** Sends a failed task to a delay queue that returns it to the work queue later, then acks. */
  async retry(
    delivery: Delivery,
    fields: DeliveryFields,
    reason: string,
    durationMs: number,
    delayMs: number,
  ): Promise<void> {
    const { emit, logger, queue, worker } = this.#options;
    const { session, message } = delivery;
    emit({ type: "task.failed", worker, at: isoTime(), ...fields, durationMs, reason });
    logger.warn(
      "Task #{seq} {taskId} failed on attempt {attempt}: {reason}; retry in {delayMs} ms",
      { ...fields, reason, delayMs },
    );
    try {
      await (session.delays ??= declareDelays(session.publish, queue));
      await publishDelayed(
        session.publish,
        queue,
        delayMs,
        message.content,
        republishProperties(message.properties, { "x-tareas-attempts": fields.attempt }),
      );
    } catch (error) {
      if (this.#gone(delivery, error)) {
        logger.warn(
          "Could not schedule the retry of task {taskId}: {cause}; the broker returns it to the queue",
          { ...fields, cause: errorMessage(error) },
        );
        return;
      }
      return this.refuse(delivery, fields, `Could not schedule a retry: ${errorMessage(error)}`);
    }
    ack(delivery);
  }

  /**
   * Sends a task that came before its time back to the ladder for the rest of its wait (a
   * publisher may set `x-tareas-run-at` itself), then acks it.
   */
  async postpone(delivery: Delivery, fields: DeliveryFields, waitMs: number): Promise<void> {
    const { logger, queue } = this.#options;
    const { session, message } = delivery;
    try {
      await (session.delays ??= declareDelays(session.publish, queue));
      await publishDelayed(
        session.publish,
        queue,
        waitMs,
        message.content,
        republishProperties(message.properties, {}),
      );
    } catch (error) {
      if (this.#gone(delivery, error)) return; // The broker returns it to the queue.
      return this.refuse(delivery, fields, `Could not delay it: ${errorMessage(error)}`);
    }
    logger.debug("Task {taskId} waits {waitMs} ms more for its time", { ...fields, waitMs });
    ack(delivery);
  }

  /** Copies a task to the dead-letter queue with the reason, then acks it. */
  async deadLetter(
    delivery: Delivery,
    fields: DeliveryFields,
    reason: string,
    durationMs?: number,
  ): Promise<void> {
    const { emit, logger, queue, worker } = this.#options;
    const { session, message } = delivery;
    try {
      await publishConfirmed(
        session.publish,
        deadQueue(queue),
        message.content,
        republishProperties(message.properties, {
          "x-tareas-reason": reason,
          "x-tareas-attempts": fields.attempt,
          "x-tareas-worker": worker,
          "x-tareas-dead-at": isoTime(),
        }),
      );
    } catch (error) {
      if (this.#gone(delivery, error)) {
        logger.warn(
          "Could not dead-letter task {taskId}: {cause}; the broker returns it to the queue",
          { ...fields, cause: errorMessage(error) },
        );
        return;
      }
      return this.refuse(delivery, fields, `${reason}; could not copy it: ${errorMessage(error)}`);
    }
    try {
      await this.#tellCaller(delivery, fields, reason);
    } catch (error) {
      if (this.#gone(delivery, error)) return; // Dead-lettered again when it comes back.
    }
    emit({
      type: "task.dead",
      worker,
      at: isoTime(),
      ...fields,
      ...(durationMs === undefined ? {} : { durationMs }),
      reason,
    });
    ack(delivery);
  }

  /**
   * Rejects a delivery without requeueing it, so that the queue's own at-least-once
   * dead-lettering moves it to `<queue>.dead` as it came: the last resort when tareas cannot
   * publish the copy itself (a header the client cannot encode, a broker refusal).
   */
  refuse(delivery: Delivery, fields: DeliveryFields, reason: string): void {
    const { emit, logger, worker } = this.#options;
    logger.error("Task {taskId} rejected to the dead-letter queue by the broker: {reason}", {
      ...fields,
      reason,
    });
    emit({
      type: "task.dead",
      worker,
      at: isoTime(),
      ...fields,
      reason: reason.slice(0, MAX_REASON),
    });
    // Its caller hears of it now, without waiting: nothing else happens to the delivery.
    this.#tellCaller(delivery, fields, reason).catch(() => {});
    delivery.session.acks.reject(delivery.message);
  }

  /** Tells the producer waiting for the task's result (if any) that it died. */
  #tellCaller(delivery: Delivery, fields: DeliveryFields, reason: string): Promise<void> {
    const replyTo = delivery.message.properties.replyTo;
    if (!isReplyQueueOf(this.#options.queue, replyTo)) return Promise.resolve();
    const body = encodeDead(reason);
    return publishReply(delivery.session.publish, replyTo, fields.taskId, RESULT_TYPE, body);
  }

  /** Whether a publish failed because the delivery's channel or connection is gone. */
  #gone(delivery: Delivery, error: unknown): boolean {
    return delivery.session.closed || isChannelClosed(error);
  }
}

/** Publishes to a queue with a broker confirm; rejects when the broker refuses or the channel closes. */
export function publishConfirmed(
  channel: ConfirmChannel,
  queue: string,
  content: ConsumeMessage["content"],
  options: Parameters<ConfirmChannel["sendToQueue"]>[2],
): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      channel.sendToQueue(queue, content, options, (error) => error ? reject(error) : resolve());
    } catch (error) {
      reject(error);
    }
  });
}
