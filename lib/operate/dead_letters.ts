/**
 * Dead letters a person can act on: list the tasks in `<queue>.dead` with why they died, show one,
 * send them back to the work queue with their attempt count reset, or purge them.
 *
 * Reading never loses a dead letter, on RabbitMQ 3.10 and 4.x alike. Peeking at a queue over AMQP
 * means taking a message and giving it back, and giving back (`nack`/`reject` with requeue, or a
 * channel closed with the message unacked) counts toward a quorum queue's delivery limit on some
 * 4.x versions, where `<queue>.dead` has the default limit of 20 (its arguments, only
 * `x-queue-type: quorum`, must not change) and no dead-letter exchange of its own: a message
 * given back 20 times would be dropped. So nothing here ever gives a message back. Each message
 * is moved through instead: taken with `basic.get`, published again (a copy with the same
 * properties and headers, to the tail of the same queue, or to the work queue when requeued) with
 * a publisher confirm and `mandatory`, and only once the broker has confirmed the copy is the
 * original acked. One pass takes exactly the messages that were in the queue when it began, so
 * the queue ends in its original order (dead letters added meanwhile come after). A crash between
 * the confirm and the ack leaves both copies: a duplicate at worst, never a loss.
 * @module
 */
import { Buffer } from "node:buffer";
import type {
  Channel,
  ChannelModel,
  ConfirmChannel,
  GetMessage,
  Options,
} from "../deps/amqplib.ts";
import { isHeadersTooLarge, withChannel, withConfirmChannel } from "../core/broker_errors.ts";
import { openConnection } from "../core/connection.ts";
import { ConfigError, errorMessage, TareasError } from "../core/errors.ts";
import { undecodableReason } from "../core/header_guard.ts";
import { printable } from "../core/text.ts";
import { deadQueue } from "../core/topology.ts";

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

// ---------------------------------------------------------------------------------------------

/** The channels of one operation: `get` takes the messages, `publish` copies them (confirmed). */
interface Channels {
  get: Channel;
  publish: ConfirmChannel;
}

/** What to do with one dead letter in a pass over the queue. */
type Decision = "keep" | "requeue";

/**
 * What a pass over the dead-letter queue did.
 *
 * @example
 * ```ts
 * const result: PassResult = await dead.requeue("all");
 * console.log(`${result.requeued} of ${result.total} sent back`);
 * ```
 */
export interface PassResult {
  /**
   * The dead letters seen, in queue order (bodies included), at most the pass's `limit`; empty
   * when the pass was given `onLetter`.
   */
  letters: DeadLetter[];
  /** How many dead letters the pass went through. */
  seen: number;
  /** How many were sent back to the work queue. */
  requeued: number;
  /** Messages in `<queue>.dead` when the pass began. */
  total: number;
}

/**
 * Options of {@linkcode openDeadLetters}.
 *
 * @example
 * ```ts
 * const options: DeadLettersOptions = { url, queue: "images" };
 * await using dead = await openDeadLetters(options);
 * ```
 */
export interface DeadLettersOptions {
  /** Broker URL. */
  url: string;
  /** The work queue whose dead letters these are. */
  queue: string;
  /** AMQP heartbeat in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Connection name shown by the broker's management tools. @default {"tareas dead letters"} */
  name?: string;
}

/**
 * Options of one operation on the dead letters.
 *
 * @example
 * ```ts
 * const { letters } = await dead.list({ limit: 20, signal: AbortSignal.timeout(5_000) });
 * ```
 */
export interface PassOptions {
  /** Stops taking more messages; those in hand are finished. */
  signal?: AbortSignal;
  /** Most messages taken in this pass. @default {Infinity} */
  limit?: number;
  /**
   * Called with each dead letter as it is read, with the number of messages in the queue when
   * the pass began. When given, the result's `letters` stays empty: a pass holds one message at
   * a time, whatever the size of the queue.
   */
  onLetter?: (letter: DeadLetter, total: number) => void | Promise<void>;
  /** Parse each body as JSON (see {@linkcode ParseOptions}). @default {true} */
  json?: boolean;
}

/**
 * The dead letters of one queue, over a connection of their own.
 *
 * @example
 * ```ts
 * await using dead: DeadLetters = await openDeadLetters({ url, queue: "images" });
 * console.log(await dead.count(), "dead letters");
 * await dead.requeue(new Set(["resize-cat.png"]));
 * ```
 */
export interface DeadLetters extends AsyncDisposable {
  /** Messages in `<queue>.dead` now (a passive declare). */
  count(): Promise<number>;
  /** Lists the dead letters (each moved through and back into place; see the module doc). */
  list(options?: PassOptions): Promise<PassResult>;
  /**
   * Sends the dead letters whose id is in `ids` (or all of them, for `"all"`) back to the work
   * queue, attempt count reset, each removed from `<queue>.dead` only once the work queue has it.
   */
  requeue(ids: ReadonlySet<string> | "all", options?: PassOptions): Promise<PassResult>;
  /** Deletes every dead letter; resolves with how many there were. */
  purge(): Promise<number>;
  /** Closes the connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Connects to the broker for the dead letters of `queue`.
 *
 * @throws {ConfigError} when the credentials are refused.
 * @throws {BrokerUnreachableError} when the broker cannot be reached.
 * @example
 * ```ts
 * await using dead = await openDeadLetters({ url, queue: "tareas_distribuidas" });
 * for (const letter of (await dead.list()).letters) console.log(letter.id, letter.reason);
 * await dead.requeue("all");
 * ```
 */
export async function openDeadLetters(options: DeadLettersOptions): Promise<DeadLetters> {
  const { queue } = options;
  const dead = deadQueue(queue);
  let model: ChannelModel | undefined;
  const connection = await openConnection({
    url: options.url,
    heartbeat: options.heartbeat ?? 15,
    name: options.name ?? "tareas dead letters",
    setup: (next) => {
      model = next;
      return Promise.resolve();
    },
  });
  let running: Promise<unknown> = Promise.resolve();
  /** One operation at a time: two passes at once would take each other's copies. */
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = running.then(work, work);
    running = next.catch(() => {});
    return next;
  };

  /**
   * Runs `work` alone (see `serial`) on two channels of its own, closed after it. Should the
   * connection be lost meanwhile, it fails at once rather than wait forever on a reply that
   * cannot come (amqplib leaves a `basic.get` in flight unanswered).
   */
  const withChannels = <T>(work: (channels: Channels) => Promise<T>): Promise<T> =>
    serial(async () => {
      const current = model;
      if (current === undefined) throw new TareasError("Not connected to the broker");
      return await withChannel(current, (get) =>
        withConfirmChannel(current, (publish) => {
          const lost = Promise.withResolvers<never>();
          lost.promise.catch(() => {});
          for (const channel of [get, publish]) {
            channel.on("close", () =>
              lost.reject(
                new TareasError(
                  "The connection to the broker was lost: no dead letter is lost, one may be " +
                    "there twice",
                ),
              ));
          }
          return Promise.race([work({ get, publish }), lost.promise]);
        }));
    });

  const check = async (channel: Channel, name: string, what: string) => {
    try {
      return await channel.checkQueue(name);
    } catch (error) {
      throw new ConfigError(
        `Queue "${name}" does not exist: ${what}`,
        { cause: error },
      );
    }
  };

  const pass = (decide: (letter: DeadLetter) => Decision, options: PassOptions = {}) =>
    withChannels(async ({ get, publish }): Promise<PassResult> => {
      const { messageCount: total } = await check(
        get,
        dead,
        `the dead letters of "${queue}" live there once a worker has run on it`,
      );
      const limit = Math.min(total, options.limit ?? Infinity);
      const result: PassResult = { letters: [], seen: 0, requeued: 0, total };
      let returned = false;
      publish.on("return", () => returned = true);
      const send = async (to: string, message: GetMessage, headers: Record<string, unknown>) => {
        returned = false;
        const properties = copyProperties(message);
        try {
          await confirmed(publish, to, message.content, { ...properties, headers });
        } catch (error) {
          if (!(error instanceof HeadersTooLargeError)) throw error;
          // Headers another client could send but amqplib cannot encode (over 64 KiB): keep
          // the task and tareas' own headers rather than leave the message stuck.
          const kept = Object.fromEntries(
            Object.entries(headers).filter(([key]) => key.startsWith("x-tareas-")),
          );
          kept["x-tareas-note"] = "The sender's headers were dropped: too large to copy";
          await confirmed(publish, to, message.content, { ...properties, headers: kept });
        }
        if (returned) throw new TareasError(`Queue "${to}" does not exist: nothing was moved`);
      };
      for (let i = 0; i < limit && !options.signal?.aborted; i++) {
        const message = await get.get(dead, { noAck: false });
        if (message === false) break;
        const letter = await parseDeadLetter(message, { json: options.json ?? true });
        if (decide(letter) === "requeue") {
          try {
            await send(queue, message, resetHeaders(letter.headers));
            result.requeued++;
          } catch (error) {
            // Not in the work queue: back to the tail of the dead letters, then stop. Should that
            // be refused too, the original stays unacked: closing the channel gives it back.
            await send(dead, message, keptHeaders(letter)).then(() => get.ack(message), () => {});
            const why = error instanceof RefusedError
              ? `the broker refused the publish to "${queue}"`
              : errorMessage(error);
            throw new TareasError(
              `Cannot requeue dead letter ${printable(letter.id)}: ${why}; it stays in "${dead}"`,
              { cause: error },
            );
          }
        } else {
          await send(dead, message, keptHeaders(letter));
        }
        get.ack(message);
        result.seen++;
        // Once it is back in place: a callback that throws (stdout closed) leaves nothing behind.
        if (options.onLetter === undefined) result.letters.push(letter);
        else await options.onLetter(letter, total);
      }
      await get.checkQueue(dead); // a round trip: the acks are processed
      return result;
    });

  const deadLetters: DeadLetters = {
    count: () =>
      withChannels(async ({ get }) =>
        (await check(get, dead, "no worker has run on this queue yet")).messageCount
      ),
    list: (options) => pass(() => "keep", options),
    requeue: (ids, options) =>
      withChannels(({ get }) => check(get, queue, "nothing to send the dead letters back to"))
        .then(() =>
          pass((letter) => ids === "all" || ids.has(letter.id) ? "requeue" : "keep", options)
        ),
    purge: () =>
      withChannels(async ({ get }) => {
        await check(get, dead, "nothing to purge");
        return (await get.purgeQueue(dead)).messageCount;
      }),
    close: () => connection.close(),
    [Symbol.asyncDispose]: () => connection.close(),
  };
  return deadLetters;
}

/** The headers of a requeued task: the sender's, without its last life's attempts and deaths. */
function resetHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).filter(([key]) => !RESET_HEADERS.test(key)));
}

/**
 * The headers of a dead letter put back in place: all of them but the broker's per-hop delivery
 * count, plus its reason and time as tareas headers when only the broker recorded them (a broker
 * may not keep another publisher's `x-death`).
 */
function keptHeaders(letter: DeadLetter): Record<string, unknown> {
  const headers = { ...letter.headers };
  delete headers["x-delivery-count"];
  if (headers["x-tareas-reason"] === undefined) headers["x-tareas-reason"] = letter.reason;
  if (headers["x-tareas-dead-at"] === undefined && letter.deadAt !== undefined) {
    headers["x-tareas-dead-at"] = letter.deadAt;
  }
  return headers;
}

/**
 * The properties of a message, to publish it again: all but `userId` (the broker checks it
 * against the publishing user) and the deprecated `clusterId`; always persistent.
 */
function copyProperties(message: GetMessage): Options.Publish {
  const p = message.properties;
  const options: Options.Publish = { persistent: true, mandatory: true };
  if (p.messageId !== undefined) options.messageId = p.messageId;
  if (p.contentType !== undefined) options.contentType = p.contentType;
  if (p.contentEncoding !== undefined) options.contentEncoding = p.contentEncoding;
  if (p.correlationId !== undefined) options.correlationId = p.correlationId;
  if (p.replyTo !== undefined) options.replyTo = p.replyTo;
  if (p.expiration !== undefined) options.expiration = p.expiration;
  if (p.timestamp !== undefined) options.timestamp = p.timestamp;
  if (p.type !== undefined) options.type = p.type;
  if (p.appId !== undefined) options.appId = p.appId;
  if (p.priority !== undefined) options.priority = p.priority;
  return options;
}

/** Publishes to a queue and resolves once the broker confirms it; rejects on a nack. */
function confirmed(
  channel: ConfirmChannel,
  queue: string,
  content: Buffer,
  options: Options.Publish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      channel.publish("", queue, content, options, (error) => {
        if (error) reject(new RefusedError(`The broker refused the publish to "${queue}"`));
        else resolve();
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      reject(
        isHeadersTooLarge(error)
          ? new HeadersTooLargeError(message, { cause: error })
          : new TareasError(`Cannot publish to "${queue}": ${message}`, { cause: error }),
      );
    }
  });
}

/** The broker nacked a publish. */
class RefusedError extends TareasError {
  override name = "RefusedError";
}

/** amqplib cannot encode a message's headers (over its 64 KiB buffer). */
class HeadersTooLargeError extends TareasError {
  override name = "HeadersTooLargeError";
}
