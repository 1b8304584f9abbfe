/**
 * The task message: its shape, its encoding, the properties it is published with, and the
 * validation a worker applies to every body before it runs anything.
 *
 * On the wire a task is a persistent AMQP message whose body is a JSON object:
 * `{"id": "…", "createdAt": "2026-…Z", "payload": …, "seq": 3, "complexity": 2}`; `id` and
 * `createdAt` are required, the others optional. Its name is the message's `type` property
 * (`"default"` when it has none). Any publisher can produce it (see the README's
 * "Enqueue from another language").
 * @module
 */
import { Buffer } from "node:buffer";
import { isoTime } from "./clock.ts";
import { TaskFormatError } from "./errors.ts";

/**
 * One unit of work, as carried in a message body.
 *
 * @example
 * ```ts
 * const handler: TaskHandler<{ image: string }> = (task: Task<{ image: string }>) => {
 *   console.log(task.id, task.createdAt, task.payload.image);
 * };
 * ```
 */
export interface Task<P = unknown> {
  /** Unique id; also the message's `messageId`, so duplicates can be recognised. */
  id: string;
  /**
   * What kind of task it is, which picks its handler (`createWorker({ handlers })`); on the wire
   * the message's `type`. `"default"` when none was given.
   */
  name: string;
  /** Position of the task within the producer run that made it (1-based; 0 when unknown). */
  seq: number;
  /** Simulated work: the default handler sleeps this many seconds (times `--time-scale`). */
  complexity: number;
  /** When the producer made the task, ISO 8601. */
  createdAt: string;
  /** The caller's data: any JSON value (`null` when the task carries none). */
  payload: P;
}

/** Options of {@linkcode createTask}. */
export interface CreateTaskOptions {
  /** The task id, for example an idempotency key. @default {a random UUID} */
  id?: string | undefined;
  /** The task's name, which picks its handler. @default {"default"} */
  name?: string | undefined;
  /** Position within the producer run. @default {0} */
  seq?: number | undefined;
  /** Seconds of simulated work for the default handler. @default {0} */
  complexity?: number | undefined;
}

/** Longest task id (and task name) accepted, in characters. */
export const MAX_ID_LENGTH = 200;

/** The name of a task published without one. */
export const DEFAULT_NAME = "default";

/** Largest complexity accepted: a day of simulated work. */
export const MAX_COMPLEXITY = 86_400;

/**
 * Makes a new task carrying `payload`.
 *
 * @throws {TaskFormatError} when an option is out of range.
 * @example
 * ```ts
 * const task = createTask({ image: "cat.png" }, { id: "resize-cat" });
 * ```
 */
export function createTask<P>(payload: P, options: CreateTaskOptions = {}): Task<P> {
  const task: Task<P> = {
    id: options.id ?? crypto.randomUUID(),
    name: options.name ?? DEFAULT_NAME,
    seq: options.seq ?? 0,
    complexity: options.complexity ?? 0,
    createdAt: isoTime(),
    payload,
  };
  checkTask(task, "Invalid task");
  return task;
}

/** A random integer complexity in `[min, max]`. */
export function randomComplexity(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/**
 * Encodes a task as the JSON body of a message.
 *
 * @throws {TaskFormatError} when the payload is not JSON (a function, a cycle, a BigInt).
 */
export function encodeTask(task: Task): Buffer {
  let json: string;
  try {
    // The name travels as the message's type, not in the body.
    const { id, seq, complexity, createdAt, payload } = task;
    json = JSON.stringify({ id, seq, complexity, createdAt, payload });
  } catch (error) {
    throw new TaskFormatError(`Payload is not JSON: ${(error as Error).message}`, { cause: error });
  }
  return Buffer.from(json);
}

/** The AMQP properties of a task's message, as amqplib's `publish` takes them. */
export interface TaskProperties {
  /** Always true: the broker writes the message to disk. */
  persistent: true;
  /** The task id. */
  messageId: string;
  /** `application/json`. */
  contentType: string;
  /** Seconds since the epoch. */
  timestamp: number;
  /** The task's name, unless it is the default one. */
  type?: string;
  /** The producer's reply queue, for a task whose result it waits for. */
  replyTo?: string;
  /** `traceparent` (W3C trace context), {@linkcode AWAITED_HEADER} and delay headers, when set. */
  headers?: Record<string, unknown>;
}

/**
 * Header of a task someone waits for (`produce --wait`): its worker publishes the task's last
 * event before its ack even while it has seen nobody listen to such events.
 */
export const AWAITED_HEADER = "x-tareas-awaited";

/** Options of {@linkcode taskProperties}. */
export interface TaskPropertiesOptions {
  /** The producer's span, as a W3C `traceparent`. */
  traceparent?: string | undefined;
  /** Someone waits for the task's completion: sets {@linkcode AWAITED_HEADER}. */
  awaited?: boolean | undefined;
  /** The reply queue its result goes to. */
  replyTo?: string | undefined;
}

/** The properties every task is published with: one definition for every publisher. */
export function taskProperties(task: Task, options: TaskPropertiesOptions = {}): TaskProperties {
  const { traceparent, awaited, replyTo } = options;
  const properties: TaskProperties = {
    persistent: true,
    messageId: task.id,
    contentType: "application/json",
    timestamp: Math.floor(Date.now() / 1000),
  };
  if (task.name !== DEFAULT_NAME) properties.type = task.name;
  if (replyTo !== undefined) properties.replyTo = replyTo;
  if (traceparent !== undefined || awaited) {
    properties.headers = {
      ...(traceparent === undefined ? {} : { traceparent }),
      ...(awaited ? { [AWAITED_HEADER]: true } : {}),
    };
  }
  return properties;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** A body's UTF-8 text; throws a TypeError on bytes that are not UTF-8. */
function bodyText(body: Uint8Array): string {
  if (body instanceof Buffer) {
    // A Buffer (what amqplib delivers) makes its text natively, several times faster. It turns
    // bad bytes into U+FFFD and keeps a byte order mark: a text with either goes to the strict
    // decoder, which rejects the first and drops the second.
    const text = body.toString("utf8");
    if (!text.includes("\uFFFD") && text.charCodeAt(0) !== 0xFEFF) return text;
  }
  return decoder.decode(body);
}

/**
 * Decodes and validates a message body into a task, named by the message's `type` (`"default"`
 * when it has none). Fields of the body other than the task's are dropped.
 *
 * @throws {TaskFormatError} when the body is too large, not JSON, or not a task, or the type is
 *   not a name.
 * @example
 * ```ts
 * const task = decodeTask(message.content, 1_048_576, message.properties.type);
 * ```
 */
export function decodeTask(body: Uint8Array, maxBytes: number, type?: unknown): Task {
  if (body.byteLength > maxBytes) {
    throw new TaskFormatError(`Body too large: ${body.byteLength} bytes, limit ${maxBytes}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(bodyText(body));
  } catch (error) {
    throw new TaskFormatError("Body is not JSON", { cause: error });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TaskFormatError("Body is not a task: expected a JSON object");
  }
  const { id, seq = 0, complexity = 0, createdAt, payload = null } = value as Record<
    string,
    unknown
  >;
  const name = type === undefined || type === "" ? DEFAULT_NAME : type;
  const task = { id, name, seq, complexity, createdAt, payload } as Task;
  checkTask(task, "Body is not a task");
  return task;
}

function checkTask(task: Task, problem: string): void {
  const { id, name, seq, complexity, createdAt } = task as unknown as Record<string, unknown>;
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw new TaskFormatError(
      `${problem}: "id" must be a string of 1 to ${MAX_ID_LENGTH} characters`,
    );
  }
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_ID_LENGTH) {
    throw new TaskFormatError(
      `${problem}: its name (the message's type) must be a string of 1 to ${MAX_ID_LENGTH} ` +
        "characters",
    );
  }
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
    throw new TaskFormatError(`${problem}: "seq" must be a non-negative integer`);
  }
  if (
    typeof complexity !== "number" || !Number.isFinite(complexity) || complexity < 0 ||
    complexity > MAX_COMPLEXITY
  ) {
    throw new TaskFormatError(
      `${problem}: "complexity" must be a number from 0 to ${MAX_COMPLEXITY}`,
    );
  }
  if (typeof createdAt !== "string" || Number.isNaN(Date.parse(createdAt))) {
    throw new TaskFormatError(`${problem}: "createdAt" must be an ISO date`);
  }
}
