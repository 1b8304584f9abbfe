/**
 * The task message: its shape, its encoding, and the validation a worker applies to every body
 * before it runs anything.
 * @module
 */
import { Buffer } from "node:buffer";
import { TaskFormatError } from "./errors.ts";

/** One unit of work, as carried in a message body (JSON). */
export interface Task {
  /** Unique id; also the message's `messageId`, so duplicates can be recognised. */
  id: string;
  /** Position of the task within the producer run that made it (1-based). */
  seq: number;
  /** How much work: the default handler sleeps this many seconds (times `--time-scale`). */
  complexity: number;
  /** When the producer made the task, ISO 8601. */
  createdAt: string;
}

/** Largest complexity accepted: a day of simulated work. */
export const MAX_COMPLEXITY = 86_400;

/** Makes a new task with a fresh id. */
export function createTask(seq: number, complexity: number): Task {
  return { id: crypto.randomUUID(), seq, complexity, createdAt: new Date().toISOString() };
}

/** A random integer complexity in `[min, max]`. */
export function randomComplexity(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** Encodes a task as the JSON body of a message. */
export function encodeTask(task: Task): Buffer {
  return Buffer.from(JSON.stringify(task));
}

/**
 * Decodes and validates a message body.
 *
 * @throws {TaskFormatError} when the body is too large, not JSON, or not a task.
 * @example
 * ```ts
 * const task = decodeTask(message.content, 1_048_576);
 * ```
 */
export function decodeTask(body: Uint8Array, maxBytes: number): Task {
  if (body.byteLength > maxBytes) {
    throw new TaskFormatError(`Body too large: ${body.byteLength} bytes, limit ${maxBytes}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (error) {
    throw new TaskFormatError("Body is not JSON", { cause: error });
  }
  assertTask(value);
  return value;
}

function assertTask(value: unknown): asserts value is Task {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TaskFormatError("Body is not a task: expected a JSON object");
  }
  const { id, seq, complexity, createdAt } = value as Record<string, unknown>;
  if (typeof id !== "string" || id.length === 0 || id.length > 200) {
    throw new TaskFormatError('Body is not a task: "id" must be a non-empty string');
  }
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
    throw new TaskFormatError('Body is not a task: "seq" must be a non-negative integer');
  }
  if (
    typeof complexity !== "number" || !Number.isFinite(complexity) || complexity < 0 ||
    complexity > MAX_COMPLEXITY
  ) {
    throw new TaskFormatError(
      `Body is not a task: "complexity" must be a number from 0 to ${MAX_COMPLEXITY}`,
    );
  }
  if (typeof createdAt !== "string" || Number.isNaN(Date.parse(createdAt))) {
    throw new TaskFormatError('Body is not a task: "createdAt" must be an ISO date');
  }
}
