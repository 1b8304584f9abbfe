/**
 * The one door of a delivery: its message read into a checked task and attempt, or the reason it
 * is not one (a malformed body, headers the connection's guard could not decode, header counters
 * out of range). Nothing else in the worker reads a message's body or headers.
 * @module
 */
import type { ConsumeMessage } from "../../deps/amqplib.ts";
import { DELAY_UNIT_MS, RUN_AT_HEADER } from "../delays.ts";
import { TaskFormatError } from "../errors.ts";
import type { TaskEvent } from "../events.ts";
import { undecodableReason } from "../header_guard.ts";
import { MAX_NAME_LENGTH } from "../options.ts";
import { type Attempt, deliveriesUsedUp, readAttempt } from "../rules.ts";
import type { TaskHandler } from "../handler.ts";
import { decodeTask, type Task } from "../task.ts";
import type { Reporting } from "./progress.ts";
import type { Session } from "./session.ts";

/**
 * One delivery and the session it arrived on (its ack is only valid there), with what its
 * handling learns of it.
 */
export interface Delivery extends Reporting {
  /** Where it arrived. */
  session: Session;
  /** The message. */
  message: ConsumeMessage;
  /** The fields of its events, once read. */
  fields: DeliveryFields | undefined;
}

/** The fields of a task event that describe the delivery. */
export type DeliveryFields = Pick<TaskEvent, "taskId" | "name" | "seq" | "attempt" | "redelivered">;

/** A delivery read: a task to run, or the reason it is not one. */
export type ReadDelivery<P> =
  | {
    task: Task<P>;
    attempt: Attempt;
    fields: DeliveryFields;
    /** How long before the task's time ({@linkcode RUN_AT_HEADER}) comes, in ms; 0 when it has. */
    waitMs: number;
    malformed?: undefined;
  }
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
    const task = decodeTask(message.content, maxBody, message.properties.type) as Task<P>;
    const fields = {
      taskId: task.id,
      name: task.name,
      seq: task.seq,
      attempt: attempt.attempt,
      redelivered,
    };
    return { task, attempt, fields, waitMs: waitFor(message.properties.headers?.[RUN_AT_HEADER]) };
  } catch (error) {
    if (!(error instanceof TaskFormatError)) throw error;
    const fields = { taskId: messageIdOf(message), seq: 0, attempt: attempt.attempt, redelivered };
    return { malformed: error.message, attempt, fields };
  }
}

/** What to do with a delivery: run its task with its handler, dead-letter it, or let it wait. */
export type Admission<P> =
  | {
    handler: TaskHandler<never>;
    task: Task<P>;
    attempt: Attempt;
    fields: DeliveryFields;
    dead?: undefined;
    waitMs?: undefined;
  }
  | { dead: string; fields: DeliveryFields; handler?: undefined; waitMs?: undefined }
  | { waitMs: number; fields: DeliveryFields; handler?: undefined; dead?: undefined };

/**
 * Decides what becomes of a delivery read: a message that is not a task, a task whose deliveries
 * are used up or whose name has no handler is dead-lettered (with the reason); a task whose time
 * has not come waits (more than {@linkcode DELAY_UNIT_MS} early); any other runs.
 */
export function admit<P>(
  read: ReadDelivery<P>,
  handlers: ReadonlyMap<string, TaskHandler<never>>,
): Admission<P> {
  const { attempt, fields } = read;
  if (read.malformed !== undefined) return { dead: read.malformed, fields };
  if (deliveriesUsedUp(attempt)) {
    // Should this delivery end without an ack too, the broker would drop the task with no event,
    // and whoever waits for it would never hear: it is dead-lettered here, visibly.
    const reason = `Delivered ${attempt.returns + 1} times without an ack: each run crashed ` +
      "its worker or lost its connection";
    return { dead: reason, fields };
  }
  // Published for later by someone who set its time in a header: back to the ladder.
  if (read.waitMs > DELAY_UNIT_MS) return { waitMs: read.waitMs, fields };
  const handler = handlers.get(read.task.name);
  if (handler === undefined) return { dead: `no handler for task "${read.task.name}"`, fields };
  return { handler, task: read.task, attempt, fields };
}

/** Milliseconds until the time a run-at header names (untrusted: ignored unless a date). */
function waitFor(runAt: unknown): number {
  if (typeof runAt !== "string" || runAt.length > 40) return 0;
  const wait = Date.parse(runAt) - Date.now();
  return wait > 0 ? wait : 0;
}

/** The message's id as a task id for events: untrusted, so only a short non-empty string. */
function messageIdOf(message: ConsumeMessage): string {
  const id = message.properties.messageId;
  return typeof id === "string" && id.length > 0 && id.length <= MAX_NAME_LENGTH
    ? id
    : "(no message id)";
}
