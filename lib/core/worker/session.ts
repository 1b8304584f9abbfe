/**
 * A worker's channels on one connection, replaced after every reconnect: the consume channel with
 * its deliveries' acks, and a confirm channel for what the worker publishes before it acks
 * (retries, dead letters). A delivery can only be acked on the channel that delivered it, so each
 * carries its session; once a channel of the session closes, the broker has requeued everything
 * the session held, the handlers still running from it are aborted and nothing more is acked.
 * @module
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from "../../deps/amqplib.ts";
import { errorMessage } from "../errors.ts";
import type { Logger } from "../../deps/logtape.ts";
import { declareTopology } from "../topology.ts";
import { AckBatcher } from "./acks.ts";
import type { Run } from "./runner.ts";

/** The channels of one connection and what hangs on them; see the module doc. */
export interface Session {
  /** The channel deliveries come from and are acked on. */
  consume: Channel;
  /** Confirmed publishes: retries and dead letters, acked only once the broker has them. */
  publish: ConfirmChannel;
  /** The acks of the consume channel's deliveries. */
  acks: AckBatcher<ConsumeMessage>;
  /** The delays' ladder, once declared on this connection (at the first retry). */
  delays?: Promise<void>;
  /** The handlers running from its deliveries, aborted when a channel of the session closes. */
  runs: Set<Run>;
  /** Its consumer, once consuming. */
  consumerTag?: string;
  /** Whether a channel of it closed. */
  closed: boolean;
}

/** Options of {@linkcode openSession}. */
export interface SessionOptions {
  /** The work queue: its topology is declared on the new channels. */
  queue: string;
  /** Unacked deliveries the broker may hand the consume channel. */
  prefetch: number;
  /** Publishes the events that acks must not overtake (see `AckBatcher`). */
  beforeAcks: (awaited: boolean) => void;
  /** Aborts a handler whose connection was lost. */
  lost: () => unknown;
  /** Hears that a channel of the session closed (`what`: "consume" or "publish"). */
  onClose: (session: Session, what: string) => void;
  /** Where channel failures and dropped acks are logged, at debug level. */
  logger: Logger;
}

/**
 * Opens the channels of a session on `model`, declares the work queue's topology and sets the
 * prefetch; consuming is the caller's next step.
 *
 * @throws {ConfigError} when the queue exists with other arguments.
 */
export async function openSession(model: ChannelModel, options: SessionOptions): Promise<Session> {
  const { logger } = options;
  const publish = await model.createConfirmChannel();
  const consume = await model.createChannel();
  const channels = [[consume, "consume"], [publish, "publish"]] as const;
  for (const [channel, what] of channels) {
    channel.on("error", (error: Error) => {
      logger.debug("The {what} channel failed: {cause}", { what, cause: errorMessage(error) });
    });
  }
  await declareTopology(publish, options.queue, model);
  await consume.prefetch(options.prefetch);
  const session: Session = {
    consume,
    publish,
    acks: new AckBatcher<ConsumeMessage>(consume, {
      prefetch: options.prefetch,
      beforeAcks: options.beforeAcks,
      onDropped: (error) => logger.debug("Dropped an ack: {cause}", { cause: errorMessage(error) }),
    }),
    runs: new Set(),
    closed: false,
  };
  for (const [channel, what] of channels) {
    channel.on("close", () => {
      if (!session.closed) {
        // Its deliveries are back in the queue: the broker hands them to another worker.
        session.closed = true;
        session.acks.close();
        for (const run of session.runs) run.controller.abort(options.lost());
        session.runs.clear();
      }
      options.onClose(session, what);
    });
  }
  return session;
}

/**
 * Consumes `queue` on the session: each message is recorded for its ack and handed to `receive`;
 * `onCancel` hears that the broker cancelled the consumer (the queue deleted, a consumer timeout
 * on 4.3+).
 */
export async function startConsuming(
  session: Session,
  queue: string,
  receive: (message: ConsumeMessage) => void,
  onCancel: () => void,
): Promise<void> {
  const { consumerTag } = await session.consume.consume(queue, (message) => {
    if (message === null) return onCancel();
    session.acks.received(message);
    receive(message);
  });
  session.consumerTag = consumerTag;
}
