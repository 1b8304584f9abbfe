/**
 * The fields of a task event a run record reads, checked: events come from anyone who can publish
 * to the events exchange, so a field of the wrong type gets its default.
 * @module
 */
import type { TareasEvent } from "../../core/events.ts";

/** Longest failure reason kept, in UTF-16 units. */
const REASON_LIMIT = 500;

/** A task event's fields, checked: events come from anyone who can publish to the exchange. */
export interface TaskFields {
  seq: number;
  attempt: number;
  redelivered: boolean;
  durationMs: number;
  reason: string | undefined;
}

/** The checked fields of a task event: 0, attempt 1, false, 0 ms and none where they are odd. */
export function taskFields(event: TareasEvent & { taskId: string }): TaskFields {
  const { seq, attempt, redelivered, durationMs, reason } = event as unknown as Record<
    string,
    unknown
  >;
  return {
    seq: typeof seq === "number" && Number.isSafeInteger(seq) ? seq : 0,
    attempt: typeof attempt === "number" && Number.isSafeInteger(attempt) && attempt >= 1
      ? attempt
      : 1,
    redelivered: redelivered === true,
    durationMs: typeof durationMs === "number" && Number.isFinite(durationMs)
      ? Math.max(0, durationMs)
      : 0,
    reason: typeof reason === "string" ? reason.slice(0, REASON_LIMIT) : undefined,
  };
}
