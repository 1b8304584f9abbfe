/**
 * The one door of a delivery: its message read into a checked task and attempt, or the reason it
 * is not one (a malformed body, headers the connection's guard could not decode, header counters
 * out of range). Nothing else in the worker reads a message's body or headers.
 * @module
 */
import type { ConsumeMessage } from "../../deps/amqplib.ts";
import { TaskFormatError } from "../errors.ts";
import type { TaskEvent } from "../events.ts";
import { undecodableReason } from "../header_guard.ts";
import { MAX_NAME_LENGTH } from "../options.ts";
import { type Attempt, readAttempt } from "../rules.ts";
import { decodeTask, type Task } from "../task.ts";
import type { Session } from "./session.ts";

/** One delivery and the session it arrived on (its ack is only valid there). */
export interface Delivery {
  /** Where it arrived. */
  session: Session;
  /** The message. */
  message: ConsumeMessage;
}

/** The fields of a task event that describe the delivery. */
export type DeliveryFields = Pick<TaskEvent, "taskId" | "seq" | "attempt" | "redelivered">;

/** A delivery read: a task to run, or the reason it is not one. */
export type ReadDelivery<P> =
  | { task: Task<P>; attempt: Attempt; fields: DeliveryFields; malformed?: undefined }
  | { malformed: string; attempt: Attempt; fields: DeliveryFields };

/**
 * Reads a delivered message into a task and its attempt; a message that is not a task comes back
 * with the reason (`malformed`) and the fields its events can carry (the message id, untrusted,
 * only when it is a short non-empty string).
 */
export function readDelivery<P>(message: ConsumeMessage, maxBody: number): ReadDelivery<P> {
  const redelivered = message.fields.redelivered;
  let attempt: Attempt = { attempt: 1, returns: 0 };
  try {
    attempt = readAttempt(message.properties.headers, redelivered);
    // Headers amqplib could not decode, replaced by the connection's guard.
    const undecodable = undecodableReason(message.properties.headers);
    if (undecodable !== undefined) {
      throw new TaskFormatError(`Headers cannot be decoded: ${undecodable}`);
    }
    const task = decodeTask(message.content, maxBody) as Task<P>;
    const fields = { taskId: task.id, seq: task.seq, attempt: attempt.attempt, redelivered };
    return { task, attempt, fields };
  } catch (error) {
    if (!(error instanceof TaskFormatError)) throw error;
    const fields = { taskId: messageIdOf(message), seq: 0, attempt: attempt.attempt, redelivered };
    return { malformed: error.message, attempt, fields };
  }
}

/** The message's id as a task id for events: untrusted, so only a short non-empty string. */
function messageIdOf(message: ConsumeMessage): string {
  const id = message.properties.messageId;
  return typeof id === "string" && id.length > 0 && id.length <= MAX_NAME_LENGTH
    ? id
    : "(no message id)";
}
