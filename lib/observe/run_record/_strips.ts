/**
 * The aggregated timeline of a run record: once the run has more attempts than the record keeps
 * exactly, each worker's attempts are counted per stored status over time buckets (its strip), and
 * the buckets double in width, merging in pairs, whenever an attempt ends past the last one.
 * @module
 */
import type { BarStatus, TimelineStrip } from "../timeline.ts";
import type { WorkerState } from "./_workers.ts";

/** Buckets of a strip; when an attempt ends past the last one, buckets merge in pairs. */
const STRIP_BUCKETS = 512;
/** The statuses a strip stores; `running` attempts are added when a timeline is drawn. */
const STORED: readonly BarStatus[] = ["completed", "failed", "dead", "interrupted"];
const STORED_COUNT = STORED.length;

/** The buckets of every worker's strip: where they start and how wide they are. */
export class Strips {
  readonly #workers: { values(): Iterable<WorkerState> };
  #startMs = 0;
  #bucketMs = 1;

  /** Strips of the workers `workers.values()` gives, each stored on its worker. */
  constructor(workers: { values(): Iterable<WorkerState> }) {
    this.#workers = workers;
  }

  /** Sets the buckets to start at `startMs`, wide enough for the run so far to reach `lastMs`. */
  begin(startMs: number, lastMs: number): void {
    this.#startMs = startMs;
    const spanMs = Math.max(0, lastMs - this.#startMs);
    // Room to grow: the run so far fills half the buckets.
    this.#bucketMs = Math.max(1, Math.ceil((spanMs + 1) / (STRIP_BUCKETS / 2)));
  }

  /** Counts an attempt of `worker` that ended at `endMs` with `status` (a stored one). */
  add(worker: WorkerState, endMs: number, status: BarStatus): void {
    let bucket = Math.max(0, Math.floor((endMs - this.#startMs) / this.#bucketMs));
    while (bucket >= STRIP_BUCKETS) {
      this.#coarsen();
      bucket = Math.floor((endMs - this.#startMs) / this.#bucketMs);
    }
    worker.strip ??= new Uint32Array(STRIP_BUCKETS * STORED_COUNT);
    bump(worker.strip, bucket * STORED_COUNT + STORED.indexOf(status), 1);
  }

  /** The strips as a timeline snapshot ending at `endMs` shows them. */
  view(endMs: number): StripView {
    return new StripView(this.#startMs, this.#bucketMs, endMs);
  }

  /** Doubles the bucket width: merges every pair of buckets of every strip. */
  #coarsen(): void {
    for (const { strip } of this.#workers.values()) {
      if (strip === undefined) continue;
      for (let bucket = 0; bucket < STRIP_BUCKETS / 2; bucket++) {
        for (let s = 0; s < STORED_COUNT; s++) {
          strip[bucket * STORED_COUNT + s] = (strip[2 * bucket * STORED_COUNT + s] ?? 0) +
            (strip[(2 * bucket + 1) * STORED_COUNT + s] ?? 0);
        }
      }
      strip.fill(0, (STRIP_BUCKETS / 2) * STORED_COUNT);
    }
    this.#bucketMs *= 2;
  }
}

/** The strips of one timeline snapshot: the record's buckets, merged so `endMs` fits. */
export class StripView {
  readonly #startMs: number;
  readonly #factor: number;
  readonly #bucketMs: number;
  readonly #length: number;

  /** A view of buckets of `bucketMs` from `startMs`, merged until `endMs` fits. */
  constructor(startMs: number, bucketMs: number, endMs: number) {
    let factor = 1;
    while ((endMs - startMs) / (bucketMs * factor) >= STRIP_BUCKETS) factor *= 2;
    this.#startMs = startMs;
    this.#factor = factor;
    this.#bucketMs = bucketMs * factor;
    this.#length = Math.max(1, Math.floor(Math.max(0, endMs - startMs) / this.#bucketMs) + 1);
  }

  /** A worker's stored strip (none: empty) as the timeline's counts per status. */
  copy(stored: Uint32Array | undefined): TimelineStrip {
    const counts = {} as Record<BarStatus, Uint32Array>;
    for (const status of [...STORED, "running" as const]) {
      counts[status] = new Uint32Array(this.#length);
    }
    if (stored !== undefined) {
      for (let bucket = 0; bucket < STRIP_BUCKETS; bucket++) {
        const to = Math.min(this.#length - 1, Math.floor(bucket / this.#factor));
        STORED.forEach((status, s) => {
          bump(counts[status], to, stored[bucket * STORED_COUNT + s] ?? 0);
        });
      }
    }
    return { start: new Date(this.#startMs), bucketMs: this.#bucketMs, counts };
  }

  /** Adds an attempt that ended at `endMs` with `status` to a copied strip. */
  add(strip: TimelineStrip, endMs: number, status: BarStatus): void {
    const bucket = Math.floor((endMs - this.#startMs) / this.#bucketMs);
    bump(strip.counts[status], Math.min(this.#length - 1, Math.max(0, bucket)), 1);
  }
}

function bump(counts: Uint32Array, index: number, by: number): void {
  counts[index] = (counts[index] ?? 0) + by;
}
