/**
 * The broker connection: amqplib's built-in recovery (backoff with jitter, `setup` run again after
 * every reconnect), heartbeats, and the classification of failures that retrying cannot fix.
 * @module
 */
import amqp, { type ChannelModel } from "amqplib";
import { redactUrl } from "./url.ts";
import { BrokerUnreachableError, ConfigError, errorMessage } from "./errors.ts";
import { log } from "./log.ts";

/** Options of {@linkcode openConnection}. */
export interface ConnectionOptions {
  /** Broker URL; printed only redacted. */
  url: string;
  /** Heartbeat interval in seconds, 0 to disable. @default {15} */
  heartbeat?: number;
  /** Connection name shown by the broker's management tools. */
  name: string;
  /**
   * Runs after every (re)connection: declare topology, open channels, start consumers. A
   * {@linkcode ConfigError} thrown here stops recovery for good; other errors are retried.
   */
  setup: (model: ChannelModel) => Promise<void>;
  /** Retries of the first connection before giving up with exit code 1. @default {4} */
  initialRetries?: number;
}

/** A recovering connection to the broker. */
export interface Connection extends AsyncDisposable {
  /** Rejects when the connection gives up for good: a configuration error or exhausted retries. */
  readonly failed: Promise<never>;
  /** Closes the connection and stops recovering. Idempotent. */
  close(): Promise<void>;
}

/**
 * Connects to the broker, retrying a few times, and keeps reconnecting after that.
 *
 * @throws {ConfigError} when credentials are refused or `setup` throws one.
 * @throws {BrokerUnreachableError} when the first connection fails after its retries.
 * @example
 * ```ts
 * await using connection = await openConnection({ url, name: "producer", setup: async (model) => {
 *   const channel = await model.createConfirmChannel();
 *   await declareTopology(channel, queue);
 * } });
 * ```
 */
export async function openConnection(options: ConnectionOptions): Promise<Connection> {
  const logger = log("connection");
  const redacted = redactUrl(options.url);
  const url = new URL(options.url);
  url.searchParams.set("heartbeat", String(options.heartbeat ?? 15));
  let fail!: (error: Error) => void;
  const failed = new Promise<never>((_, reject) => fail = reject);
  failed.catch(() => {});
  const recovering = await amqp.connect(url.href, {
    clientProperties: { connection_name: options.name },
    noDelay: true, // Nagle plus delayed ACKs would hold back small frames such as acks by ~40 ms.
    recovery: {
      initialDelay: 250,
      maxDelay: 10_000,
      factor: 2,
      jitter: 0.3,
      initialMaxRetries: options.initialRetries ?? 4,
      maxRetries: Infinity,
      waitForConnect: false,
      setup: options.setup,
    },
  });
  const giveUp = (error: Error) => {
    fail(error);
    recovering.close().catch(() => {});
  };
  recovering.on("connect", () => logger.info("Connected to {url}", { url: redacted }));
  recovering.on("connect-failed", (error: Error) => {
    const fatal = fatalError(error, redacted);
    if (fatal) giveUp(fatal);
  });
  recovering.on("disconnect", (error: Error) => {
    logger.warn("Lost connection to {url}: {cause}; reconnecting", {
      url: redacted,
      cause: errorMessage(error),
    });
  });
  recovering.on("reconnect-scheduled", ({ attempt, delay, error }) => {
    logger.warn("Cannot reach {url} ({cause}): retry {attempt} in {delay} ms", {
      url: redacted,
      cause: errorMessage(error),
      attempt,
      delay,
    });
  });
  recovering.on("reconnect-failed", (error: Error) => {
    giveUp(
      new BrokerUnreachableError(`Cannot reach the broker at ${redacted}: ${errorMessage(error)}`, {
        cause: error,
      }),
    );
  });
  recovering.on(
    "error",
    (error: Error) => logger.debug("Connection error: {cause}", { cause: errorMessage(error) }),
  );
  recovering.on(
    "handler-error",
    (error: Error) => logger.error("Event handler failed: {error}", { error }),
  );
  let closing: Promise<void> | undefined;
  const connection: Connection = {
    failed,
    close: () => closing ??= recovering.close().catch(() => {}),
    [Symbol.asyncDispose]: () => connection.close(),
  };
  try {
    await Promise.race([recovering.waitForConnect(), failed]);
  } catch (error) {
    await connection.close();
    throw error;
  }
  return connection;
}

function fatalError(error: Error, redacted: string): Error | undefined {
  if (error instanceof ConfigError) return error;
  if (/ACCESS[-_]REFUSED|403/.test(error.message)) {
    const user = decodeURIComponent(new URL(redacted).username || "guest");
    return new ConfigError(
      `The broker at ${redacted} refused the credentials of user "${user}" (ACCESS_REFUSED)`,
      { cause: error },
    );
  }
  if (/NOT[-_]ALLOWED|530/.test(error.message)) {
    return new ConfigError(`The broker at ${redacted} refused access to the virtual host`, {
      cause: error,
    });
  }
  return undefined;
}
