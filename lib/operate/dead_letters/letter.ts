/**
 * One dead letter, read from a message of `<queue>.dead`: its id, why and when it died, how many
 * attempts it had, and its body. Every field comes from the message, so it is checked here and
 * nowhere else, and parsing never throws.
 * @module
 */
import { Buffer } from "node:buffer";
import { undecodableReason } from "../../core/header_guard.ts";

/**
 * One message of `<queue>.dead`, parsed; every field is from the message, so untrusted.
 *
 * @example
 * ```ts
 * const { letters } = await dead.list();
 * for (const letter: DeadLetter of letters) console.log(letter.id, letter.attempts, letter.reason);
 * ```
 */
export interface DeadLetter {
  /**
   * How to name it: its `messageId` (the task id), or `body-` and 16 hex digits of the SHA-256
   * of its body when it has none (a malformed message). Copies share the id.
   */
  id: string;
  /** Why it was dead-lettered: `x-tareas-reason`, else the broker's own dead-lettering reason. */
  reason: string;
  /** Attempts made before it died (`x-tareas-attempts`), when known. */
  attempts?: number;
  /** When it was dead-lettered, ISO 8601, when known. */
  deadAt?: string;
  /** The worker that dead-lettered it, when known. */
  worker?: string;
  /** Size of the body in bytes. */
  size: number;
  /** The body. */
  body: Uint8Array;
  /** The body as JSON, when it is JSON (a task: `{id, seq, complexity, createdAt, payload?}`). */
  json?: unknown;
  /** The task's `payload` field, when the body is a JSON object that has one. */
  payload?: unknown;
  /** The message's headers, as the broker gave them. */
  headers: Record<string, unknown>;
  /** The message's `messageId`, when it has one. */
  messageId?: string;
}

/** What {@linkcode parseDeadLetter} reads of a message, as amqplib delivers it. */
export interface DeadMessage {
  /** The body. */
  content: Uint8Array;
  /** The message's properties: its `messageId` and `headers` are read. */
  properties: { messageId?: unknown; headers?: Record<string, unknown> | undefined };
}

/**
 * Headers a requeue drops: the attempt count and death records of the task's last life (with the
 * mark of headers that could not be decoded: they are gone, the task can run without them).
 */
export const RESET_HEADERS =
  /^x-(tareas-(attempts|reason|worker|dead-at|undecodable)|death|first-death-.*|last-death-.*|delivery-count)$/;

const MAX_ID_LENGTH = 200;
const MAX_REASON_LENGTH = 1000;

/** Options of {@linkcode parseDeadLetter}. */
export interface ParseOptions {
  /**
   * Parse the body as JSON (`json` and `payload`); a listing that shows no body leaves it off,
   * as parsing a large body takes several times its size in memory.
   * @default {true}
   */
  json?: boolean;
}

/**
 * Parses a message of a dead-letter queue. Never throws: missing or odd headers leave the
 * matching fields out. The letter's `body` is a view of the message's content, not a copy.
 *
 * @example
 * ```ts
 * const letter = await parseDeadLetter({ content: Buffer.from("{}"), properties: {} });
 * console.log(letter.id); // body-44136fa355b3678a
 * ```
 */
export async function parseDeadLetter(
  message: DeadMessage,
  options: ParseOptions = {},
): Promise<DeadLetter> {
  const headers: Record<string, unknown> = { ...(message.properties.headers ?? {}) };
  const { content } = message;
  const body = new Uint8Array(
    content.buffer as ArrayBuffer,
    content.byteOffset,
    content.byteLength,
  );
  const messageId = text(message.properties.messageId, MAX_ID_LENGTH);
  const undecodable = undecodableReason(headers);
  const letter: DeadLetter = {
    id: messageId ?? await bodyId(body),
    reason: text(headers["x-tareas-reason"], MAX_REASON_LENGTH) ??
      (undecodable === undefined
        ? brokerReason(headers)
        : `Headers cannot be decoded: ${undecodable}`),
    size: body.byteLength,
    body,
    headers,
  };
  if (messageId !== undefined) letter.messageId = messageId;
  const attempts = headers["x-tareas-attempts"];
  if (typeof attempts === "number" && Number.isSafeInteger(attempts) && attempts >= 0) {
    letter.attempts = attempts;
  }
  const deadAt = date(headers["x-tareas-dead-at"]) ?? deathTime(headers);
  if (deadAt !== undefined) letter.deadAt = deadAt;
  const worker = text(headers["x-tareas-worker"], MAX_ID_LENGTH);
  if (worker !== undefined) letter.worker = worker;
  if (options.json === false) return letter;
  try {
    const json: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
    letter.json = json;
    if (typeof json === "object" && json !== null && !Array.isArray(json) && "payload" in json) {
      letter.payload = json.payload;
    }
  } catch {
    // Not JSON: shown as text or bytes.
  }
  return letter;
}

function text(value: unknown, max: number): string | undefined {
  if (Buffer.isBuffer(value)) value = value.toString("utf8");
  if (typeof value !== "string" || value === "") return undefined;
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`;
}

function date(value: unknown): string | undefined {
  const raw = text(value, 100);
  const ms = raw === undefined ? NaN : Date.parse(raw);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

async function bodyId(body: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", body));
  return `body-${[...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The broker's reason (`x-first-death-reason`, or the first `x-death` record), in words. */
function brokerReason(headers: Record<string, unknown>): string {
  const deaths = headers["x-death"];
  const first = Array.isArray(deaths) && typeof deaths[0] === "object" && deaths[0] !== null
    ? deaths[0] as Record<string, unknown>
    : {};
  const reason = text(headers["x-first-death-reason"], 100) ?? text(first.reason, 100);
  const queue = text(headers["x-first-death-queue"], MAX_ID_LENGTH) ?? text(first.queue, 200);
  const words: Record<string, string> = {
    delivery_limit: "Delivered too many times without an ack (the queue's delivery limit)",
    rejected: "Rejected without requeue",
    expired: "Expired (message TTL)",
    maxlen: "Dropped from a full queue",
  };
  if (reason === undefined) return "Unknown: no reason recorded";
  return `${words[reason] ?? `Dead-lettered by the broker: ${reason}`}` +
    (queue === undefined ? "" : ` in queue ${queue}`);
}

function deathTime(headers: Record<string, unknown>): string | undefined {
  const deaths = headers["x-death"];
  if (!Array.isArray(deaths) || typeof deaths[0] !== "object" || deaths[0] === null) return;
  const time = (deaths[0] as Record<string, unknown>).time;
  const seconds = typeof time === "number"
    ? time
    : typeof time === "object" && time !== null && typeof (time as { value?: unknown }).value ===
        "number"
    ? (time as { value: number }).value
    : NaN;
  return Number.isFinite(seconds) && seconds > 0 && seconds < 1e11
    ? new Date(seconds * 1000).toISOString()
    : undefined;
}
