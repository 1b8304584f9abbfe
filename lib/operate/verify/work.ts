/**
 * The simulated work of a verify run: each task's payload says how long its handler sleeps. The
 * workers run it through the handler module `_handler.ts`; verify publishes it.
 * @module
 */
import { PermanentError } from "../../core/errors.ts";

/** The longest simulated work of one task, in ms: well below the worker's task timeout. */
export const MAX_WORK_MS = 300_000;

/**
 * The payload of a verify task.
 *
 * @example
 * ```ts
 * const payload: VerifyPayload = { verify: 1, ms: 120 };
 * ```
 */
export interface VerifyPayload {
  /** Marks the payload as verify's (version 1 of it). */
  verify: 1;
  /** How long the handler sleeps, in ms. */
  ms: number;
}

/**
 * How long the task whose payload is `payload` works, in ms: the one door of the payload, which
 * comes from the queue and is checked like any message.
 *
 * @throws {PermanentError} when it is not a verify payload: the task is dead-lettered at once.
 * @example
 * ```ts
 * workMs({ verify: 1, ms: 120 }); // 120
 * ```
 */
export function workMs(payload: unknown): number {
  const value = payload as Partial<VerifyPayload> | null;
  const ms = typeof value === "object" && value !== null && value.verify === 1
    ? value.ms
    : undefined;
  if (typeof ms !== "number" || !Number.isInteger(ms) || ms < 0 || ms > MAX_WORK_MS) {
    throw new PermanentError(
      `Not a verify task: expected a payload {"verify":1,"ms":<0 to ${MAX_WORK_MS}>}`,
    );
  }
  return ms;
}

/** A random payload whose work lasts from `min` to `max` ms (whole ms, both included). */
export function randomPayload(min: number, max: number): VerifyPayload {
  return { verify: 1, ms: min + Math.floor(Math.random() * (max - min + 1)) };
}
