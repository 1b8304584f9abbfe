/**
 * The lease token's body: the record of what was fired, for each schedule id the time up to which
 * every tick has been dealt with. It comes from the broker, where anyone allowed to publish to the
 * lease queue could have put something else: {@linkcode decodeRecord} is its one door.
 * @module
 */
import { Buffer } from "node:buffer";
import { TareasError } from "../../core/errors.ts";

/** The record: for each schedule id, the time (ms) up to which its ticks were dealt with. */
export type TickRecord = Map<string, number>;

/** Largest token body accepted, in bytes: ids of at most 100 characters, 1,000 schedules. */
export const MAX_RECORD_BYTES = 1_048_576;

/** Most schedule ids a record keeps (those of other schedulers' files included). */
export const MAX_RECORD_ENTRIES = 10_000;

/** A token that is not one: dropped by the leader at its next commit. */
export class RecordFormatError extends TareasError {
  /** Creates a record format error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RecordFormatError";
  }
}

/**
 * The body of a token: `{"v": 1, "ticks": {"<id>": "<ISO time>"}, "by": "<scheduler>", "at":
 * "<ISO time>"}`.
 */
export function encodeRecord(record: TickRecord, by: string, at = Date.now()): Buffer {
  const ticks: { [id: string]: string } = {};
  for (const [id, ms] of record) ticks[id] = new Date(ms).toISOString();
  return Buffer.from(JSON.stringify({ v: 1, ticks, by, at: new Date(at).toISOString() }));
}

/**
 * Decodes and checks a token's body.
 *
 * @throws {RecordFormatError} when it is not a record of this version.
 */
export function decodeRecord(body: Uint8Array): TickRecord {
  if (body.byteLength > MAX_RECORD_BYTES) {
    throw new RecordFormatError(
      `Not a record: ${body.byteLength} bytes, limit ${MAX_RECORD_BYTES}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (error) {
    throw new RecordFormatError("Not a record: the body is not JSON", { cause: error });
  }
  const { v, ticks } = (typeof value === "object" && value !== null ? value : {}) as {
    v?: unknown;
    ticks?: unknown;
  };
  if (v !== 1 || typeof ticks !== "object" || ticks === null || Array.isArray(ticks)) {
    throw new RecordFormatError('Not a record: expected {"v": 1, "ticks": {...}}');
  }
  const entries = Object.entries(ticks);
  if (entries.length > MAX_RECORD_ENTRIES) {
    throw new RecordFormatError(
      `Not a record: ${entries.length} entries, limit ${MAX_RECORD_ENTRIES}`,
    );
  }
  const record: TickRecord = new Map();
  for (const [id, at] of entries) {
    const ms = typeof at === "string" ? Date.parse(at) : NaN;
    if (id.length === 0 || id.length > 200 || !Number.isFinite(ms)) {
      throw new RecordFormatError("Not a record: each entry must be an id and an ISO time");
    }
    record.set(id, ms);
  }
  return record;
}

/**
 * Merges records: for each id, the latest time. A queue holds more than one token only after two
 * schedulers both found it empty at once, or a broker crash in the middle of a commit.
 */
export function mergeRecords(records: Iterable<TickRecord>): TickRecord {
  const merged: TickRecord = new Map();
  for (const record of records) {
    for (const [id, ms] of record) merged.set(id, Math.max(merged.get(id) ?? -Infinity, ms));
  }
  return merged;
}
