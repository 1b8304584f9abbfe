/**
 * The rules that decide a delivery's fate, apart from any broker: which attempt it is (from the
 * headers, validated: anyone can publish to the work queue), whether its deliveries are used up,
 * how long a failed attempt waits before the next, when a task is dead, and which headers and
 * properties a retry or a dead letter carries.
 * @module
 */
import { TaskFormatError } from "./errors.ts";
import { DELIVERY_LIMIT } from "./topology.ts";

/** Longest wait between retries, whatever the retry delay and the attempt number. */
export const MAX_RETRY_DELAY_MS = 3_600_000;

/** Largest number of earlier attempts a message may claim in `x-tareas-attempts`. */
export const MAX_RECORDED_ATTEMPTS = 1_000_000;

/** Bytes of the sender's own headers a retry or dead letter carries on (names plus values). */
export const SENDER_HEADERS_BUDGET = 16 * 1024;

/** Headers tareas writes on a retry or a dead letter; a sender's values for them are replaced. */
export const OWNED_HEADERS = [
  "x-tareas-attempts",
  "x-tareas-reason",
  "x-tareas-worker",
  "x-tareas-dead-at",
] as const;

/** Headers the broker adds per hop (queue); a retry starts a new hop without them. */
const HOP_HEADERS = /^x-(delivery-count|death|first-death-.*|last-death-.*)$/;

/** Which attempt a delivery is, as read from its headers. */
export interface Attempt {
  /** 1 for the first delivery of a task; counts failed attempts and lost deliveries. */
  attempt: number;
  /** How many times this hop's delivery ended without an ack (a crash, a lost connection). */
  returns: number;
}

/**
 * Reads which attempt a delivery is: the attempts of earlier hops (`x-tareas-attempts`, written
 * by tareas on a retry) plus the returns in this hop (the quorum queue's `x-delivery-count`, only
 * believed when the broker flags the delivery as redelivered), plus one.
 *
 * @throws {TaskFormatError} when a header holds anything but a whole number in range.
 * @example
 * ```ts
 * readAttempt({ "x-tareas-attempts": 2 }, false); // { attempt: 3, returns: 0 }
 * ```
 */
export function readAttempt(
  headers: Record<string, unknown> | undefined,
  redelivered: boolean,
): Attempt {
  const earlier = count(headers?.["x-tareas-attempts"], "x-tareas-attempts");
  // A first delivery has no returns, whatever a publisher wrote in x-delivery-count.
  const counted = redelivered ? count(headers?.["x-delivery-count"], "x-delivery-count") : 0;
  // A redelivery without the header (a classic queue) is at least one return.
  const returns = redelivered ? Math.max(1, counted) : 0;
  return { attempt: earlier + returns + 1, returns };
}

function count(value: unknown, header: string): number {
  if (value === undefined) return 0;
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 ||
    value > MAX_RECORDED_ATTEMPTS
  ) {
    throw new TaskFormatError(
      `Header ${header} must be a whole number from 0 to ${MAX_RECORDED_ATTEMPTS}, got ` +
        describeValue(value),
    );
  }
  return value;
}

/**
 * Whether a delivery has come back so often without an ack (each run crashed its worker or lost
 * its connection) that it must not run again: the broker's own limit would drop the next one.
 */
export function deliveriesUsedUp(attempt: Attempt): boolean {
  return attempt.returns >= DELIVERY_LIMIT;
}

/** What to do with a task whose attempt failed. */
export type FailureAction = { action: "retry"; delayMs: number } | { action: "dead" };

/**
 * Decides the fate of a failed attempt: dead once `maxAttempts` attempts have run, else a retry
 * after `retryDelayMs` doubled for each earlier attempt, at most {@linkcode MAX_RETRY_DELAY_MS},
 * in whole milliseconds.
 *
 * @example
 * ```ts
 * afterFailure(2, { maxAttempts: 5, retryDelayMs: 1000 }); // { action: "retry", delayMs: 2000 }
 * ```
 */
export function afterFailure(
  attempt: number,
  options: { maxAttempts: number; retryDelayMs: number },
): FailureAction {
  if (attempt >= options.maxAttempts) return { action: "dead" };
  const delayMs = Math.min(options.retryDelayMs * 2 ** (attempt - 1), MAX_RETRY_DELAY_MS);
  return { action: "retry", delayMs: Math.round(delayMs) };
}

/** The AMQP properties of a message, as amqplib hands them over with a delivery. */
export interface MessageProperties {
  /** The task id, when the publisher set one. */
  messageId?: unknown;
  /** Usually `application/json`. */
  contentType?: unknown;
  /** Seconds since the epoch. */
  timestamp?: unknown;
  /** Set by request/reply publishers. */
  correlationId?: unknown;
  /** The reply queue of a task whose result someone waits for. */
  replyTo?: unknown;
  /** Message type. */
  type?: unknown;
  /** The headers table. */
  headers?: Record<string, unknown> | undefined;
}

/** The properties of a republished message (a retry or a dead letter). */
export interface RepublishProperties {
  /** Always true. */
  persistent: true;
  /** Kept from the original. */
  messageId?: string;
  /** Kept from the original. */
  contentType?: string;
  /** Kept from the original. */
  timestamp?: number;
  /** Kept from the original. */
  correlationId?: string;
  /** Kept from the original: the task's name. */
  type?: string;
  /** Kept from the original: where its result goes. */
  replyTo?: string;
  /** The sender's headers within {@linkcode SENDER_HEADERS_BUDGET}, then `owned`. */
  headers: Record<string, unknown>;
}

/**
 * The properties a retry or a dead letter is published with: the original's identity, the
 * sender's own headers that are plain values and fit the budget (hop headers and tareas' own are
 * left out), then the headers tareas owns. Whatever the original carried, the result encodes.
 */
export function republishProperties(
  original: MessageProperties,
  owned: Partial<Record<typeof OWNED_HEADERS[number], string | number>>,
): RepublishProperties {
  const properties: RepublishProperties = { persistent: true, headers: {} };
  for (const key of ["messageId", "contentType", "correlationId", "type", "replyTo"] as const) {
    const value = original[key];
    if (typeof value === "string" && value.length <= 255) properties[key] = value;
  }
  if (typeof original.timestamp === "number" && Number.isSafeInteger(original.timestamp)) {
    properties.timestamp = original.timestamp;
  }
  let budget = SENDER_HEADERS_BUDGET;
  for (const [key, value] of Object.entries(original.headers ?? {})) {
    if (HOP_HEADERS.test(key) || (OWNED_HEADERS as readonly string[]).includes(key)) continue;
    if (!isPlainHeader(value)) continue;
    const size = key.length + (typeof value === "string" ? value.length : 8);
    if (key.length > 255 || size > budget) continue;
    budget -= size;
    properties.headers[key] = value;
  }
  Object.assign(properties.headers, owned);
  return properties;
}

/** Header values that encode unambiguously: strings, booleans, safe integers. */
function isPlainHeader(value: unknown): value is string | boolean | number {
  return typeof value === "string" || typeof value === "boolean" ||
    (typeof value === "number" && Number.isSafeInteger(value));
}

function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.slice(0, 40));
  if (typeof value === "number") return String(value);
  if (value === null) return "null";
  return `a value of type ${typeof value === "object" ? "table or array" : typeof value}`;
}
