/**
 * What a worker tells the producer waiting for a task (`producer.call`, or `onResult`): its result
 * before the ack, and its progress while it runs, on the reply queue the task names in `reply_to`.
 * A worker answers only reply queues of its own work queue (`<queue>.reply.…`): a publisher could
 * otherwise make it write into any queue the worker may write to.
 * @module
 */
import { Buffer } from "node:buffer";
import { errorMessage, PermanentError } from "../errors.ts";
import {
  encodeResult,
  isReplyQueueOf,
  PROGRESS_TYPE,
  publishReply,
  RESULT_TYPE,
} from "../results.ts";
import type { Delivery } from "./delivery.ts";
import type { ProgressValue } from "./progress.ts";

/** The reply queue a delivery's producer waits on, when it names one of `queue`'s. */
export function replyQueueOf(delivery: Delivery, queue: string): string | undefined {
  const replyTo = delivery.message.properties.replyTo;
  return replyTo !== undefined && isReplyQueueOf(queue, replyTo) ? replyTo : undefined;
}

/**
 * Sends a task's result to `replyTo`, confirmed by the broker.
 *
 * @throws {PermanentError} when the result is not JSON or too large (running again cannot help);
 *   the publish's error when the broker refuses it or the channel closes.
 */
export async function sendResult(
  delivery: Delivery,
  replyTo: string,
  taskId: string,
  result: unknown,
): Promise<void> {
  let body: Buffer;
  try {
    body = encodeResult(result);
  } catch (error) {
    throw new PermanentError(errorMessage(error), { cause: error });
  }
  await publishReply(delivery.session.publish, replyTo, taskId, RESULT_TYPE, body);
}

/** Sends a running task's progress to `replyTo`, transient and best effort. */
export function sendProgress(
  delivery: Delivery,
  replyTo: string,
  taskId: string,
  value: ProgressValue,
): void {
  const body = Buffer.from(JSON.stringify({ progress: value }));
  publishReply(delivery.session.publish, replyTo, taskId, PROGRESS_TYPE, body).catch(() => {});
}
