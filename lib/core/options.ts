/**
 * The rules of worker and producer options, in one place: their defaults, their ranges and the
 * messages that refuse them. `createWorker` and `createProducer` check the options they are given
 * here, and the command lines turn their flags into the same options and check them here too, so
 * a flag and its option accept the same values and say the same thing when they do not (naming
 * the option as the caller wrote it: `--task-timeout` in seconds, `taskTimeout` in milliseconds).
 * @module
 */
import { UsageError } from "./errors.ts";
import { printable } from "./text.ts";
import { DEFAULT_QUEUE } from "./topology.ts";

/** The range of a numeric option, and how its flag writes it. */
export interface NumberRule {
  /** The flag, without its dashes. */
  flag: string;
  /** Smallest value of the option. */
  min: number;
  /** Largest value of the option. */
  max: number;
  /** The option's default. */
  fallback: number;
  /** Whether the option is a whole number. */
  whole: boolean;
  /** Option units per flag unit: 1000 for a flag in seconds and an option in milliseconds. */
  scale?: number;
}

/** Every numeric option of a worker or a producer, by its name in the library. */
export const NUMBER_RULES = {
  heartbeat: { flag: "heartbeat", min: 0, max: 600, fallback: 15, whole: true },
  concurrency: { flag: "concurrency", min: 1, max: 10_000, fallback: 1, whole: true },
  prefetch: { flag: "prefetch", min: 1, max: 65_535, fallback: 1, whole: true },
  maxAttempts: { flag: "max-attempts", min: 1, max: 1_000, fallback: 5, whole: true },
  retryDelay: {
    flag: "retry-delay",
    min: 0,
    max: 86_400_000,
    fallback: 1_000,
    whole: true,
    scale: 1_000,
  },
  taskTimeout: {
    flag: "task-timeout",
    min: 0,
    max: 7 * 86_400_000,
    fallback: 600_000,
    whole: true,
    scale: 1_000,
  },
  // RabbitMQ's own max_message_size cannot exceed 512 MiB and defaults to 128 MiB (3.10) or
  // 16 MiB (4.x): a larger limit would only let a worker read what no broker sends.
  maxBody: { flag: "max-body", min: 64, max: 128 * 1_048_576, fallback: 1_048_576, whole: true },
  timeScale: { flag: "time-scale", min: 0, max: 3_600, fallback: 1, whole: false },
} as const satisfies Record<string, NumberRule>;

/** The name of a numeric option. */
export type NumberOption = keyof typeof NUMBER_RULES;

/** Longest worker name, queue name or task id, in characters. */
export const MAX_NAME_LENGTH = 200;

/**
 * Checks a numeric option given to the library; returns it, or its default when undefined.
 *
 * @throws {UsageError} naming the option, when it is out of its range.
 * @example
 * ```ts
 * checkNumber("concurrency", 4); // 4
 * checkNumber("concurrency", undefined); // 1
 * ```
 */
export function checkNumber(option: NumberOption, value: number | undefined): number {
  const rule: NumberRule = NUMBER_RULES[option];
  if (value === undefined) return rule.fallback;
  if (!inRange(rule, value)) {
    throw new UsageError(`Invalid ${option} ${value}: expected ${expected(rule, 1)}`);
  }
  return value;
}

/**
 * Reads a numeric option from its flag's text (`undefined` when the flag is absent): the value in
 * the option's unit, or its default.
 *
 * @throws {UsageError} naming the flag, when the text is not a number in the flag's range.
 * @example
 * ```ts
 * numberFlag("task-timeout", "2.5"); // 2500 (ms)
 * ```
 */
export function numberFlag(option: NumberOption, text: string | undefined): number {
  const rule: NumberRule = NUMBER_RULES[option];
  if (text === undefined) return rule.fallback;
  const scale = rule.scale ?? 1;
  const parsed = text.trim() === "" ? NaN : Number(text);
  const value = rule.whole ? Math.round(parsed * scale) : parsed * scale;
  // A whole option written in whole flag units: "1.5" is refused for --concurrency, taken for
  // --task-timeout (1500 ms).
  const whole = !rule.whole || scale > 1 || Number.isInteger(parsed);
  if (!Number.isFinite(parsed) || !whole || !inRange(rule, value)) {
    throw new UsageError(
      `Invalid --${rule.flag} "${printable(text)}": expected ${expected(rule, scale)}`,
    );
  }
  return value;
}

function inRange(rule: NumberRule, value: number): boolean {
  return typeof value === "number" && Number.isFinite(value) && value >= rule.min &&
    value <= rule.max && (!rule.whole || Number.isInteger(value));
}

/** "a whole number from 1 to 10000", in the flag's unit when `scale` is its scale. */
function expected(rule: NumberRule, scale: number): string {
  const kind = rule.whole && scale === 1 ? "a whole number" : "a number";
  const unit = rule.scale === undefined ? "" : scale === 1 ? " (milliseconds)" : " (seconds)";
  return `${kind} from ${rule.min / scale} to ${rule.max / scale}${unit}`;
}

/**
 * Checks that the prefetch is at least the concurrency: more handlers than deliveries in hand
 * could never all run.
 *
 * @throws {UsageError} otherwise, naming the options as flags when `flags` is true.
 */
export function checkPrefetch(prefetch: number, concurrency: number, flags = false): void {
  if (prefetch >= concurrency) return;
  const [p, c] = flags ? ["--prefetch", "--concurrency"] : ["prefetch", "concurrency"];
  throw new UsageError(`Invalid ${p} ${prefetch}: it must be at least ${c} (${concurrency})`);
}

/**
 * Checks a work queue name: 1 to {@linkcode MAX_NAME_LENGTH} characters, not starting with
 * `amq.` (reserved by RabbitMQ). Returns it, or the default queue when undefined.
 *
 * @throws {UsageError} otherwise (naming `--queue` when `flags` is true).
 */
export function checkQueue(queue: string | undefined, flags = false): string {
  if (queue === undefined) return DEFAULT_QUEUE;
  if (
    typeof queue !== "string" || queue === "" || queue.length > MAX_NAME_LENGTH ||
    queue.startsWith("amq.")
  ) {
    throw new UsageError(
      `Invalid ${flags ? "--queue" : "queue"} "${printable(String(queue))}": expected 1 to ` +
        `${MAX_NAME_LENGTH} characters, not starting with "amq."`,
    );
  }
  return queue;
}

/**
 * Checks a worker name: 1 to {@linkcode MAX_NAME_LENGTH} characters, not only spaces.
 *
 * @throws {UsageError} otherwise (naming `--name` when `flags` is true).
 */
export function checkWorkerName(name: string, flags = false): string {
  if (typeof name !== "string" || name.trim() === "" || name.length > MAX_NAME_LENGTH) {
    throw new UsageError(
      `Invalid ${flags ? "--name" : "name"}: expected 1 to ${MAX_NAME_LENGTH} characters, ` +
        "not only spaces",
    );
  }
  return name;
}
