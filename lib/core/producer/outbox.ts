/**
 * A producer's tasks on their way: each is published (again after a reconnect, with the same id)
 * until the broker confirms it. Tasks go out in the order they were added, as fast as the channel
 * takes them (back-pressure by its `drain`), at most {@linkcode MAX_IN_FLIGHT} unconfirmed. A
 * delayed task goes down the delays' ladder (`../delays.ts`, declared on the connection the first
 * time one is published), `mandatory`: should the ladder be missing, the broker returns it and it
 * is published again once the ladder is declared again, rather than confirmed into nowhere.
 * @module
 */
import type { Buffer } from "node:buffer";
import type { ChannelModel, ConfirmChannel } from "../../deps/amqplib.ts";
import type { Span } from "../../deps/opentelemetry.ts";
import { isNacked, maxMessageSize } from "../broker_errors.ts";
import { declareDelays, DELAY_QUEUE_HEADER, delayRoute, RUN_AT_HEADER } from "../delays.ts";
import { errorMessage, TareasError } from "../errors.ts";
import { log } from "../log.ts";
import type { Task, TaskProperties } from "../task.ts";

/** How long a task the broker keeps refusing (basic.nack) is published again before it is reported. */
const NACK_PATIENCE_MS = 60_000;

/** Unconfirmed tasks beyond which adding more waits ({@linkcode Outbox.waitForRoom}). */
export const MAX_IN_FLIGHT = 10_000;

/** A task on its way: published (perhaps again) until the broker confirms it. */
export interface Pending {
  /** The task. */
  task: Task;
  /** Its message body. */
  content: Buffer;
  /** Its message properties. */
  properties: TaskProperties;
  /** The producer's trace span, ended once the task is confirmed or refused. */
  span: Pick<Span, "end">;
  /** When it may run (epoch ms), for a delayed task. */
  runAt?: number | undefined;
  /** Called once the broker confirmed it. */
  confirmed: (task: Task) => void;
  /** Called when it is refused for good. */
  refused: (error: Error) => void;
  /** Times the broker refused it (basic.nack), and when it did first. */
  nacks: number;
  /** When the broker first refused it. */
  firstNack?: number;
  /** Returned unroutable by the broker (its confirm follows): publish it again. */
  returned?: boolean;
}

/** Options of {@linkcode Outbox}. */
export interface OutboxOptions {
  /** The work queue. */
  queue: string;
  /** Opens a new channel in place of one that refuses what it is given (see `renew`). */
  renew: (model: ChannelModel) => void;
}

/** A producer's unconfirmed tasks; see the module doc. */
export class Outbox {
  #queue: string;
  #renewChannel: (model: ChannelModel) => void;
  #channel: ConfirmChannel | undefined;
  #model: ChannelModel | undefined;
  /** Not yet confirmed, in publish order; keyed by an internal number (ids may repeat). */
  #pending = new Map<number, Pending>();
  /** Not yet handed to the current channel, in order. */
  #queued: number[] = [];
  #next = 0;
  #blocked = false;
  #room: (() => void)[] = [];
  /** The delays' ladder on the current connection: declared at the first delayed task. */
  #ladder: Promise<void> | undefined;
  #ladderReady = false;

  /** An outbox for the tasks of one work queue. */
  constructor(options: OutboxOptions) {
    this.#queue = options.queue;
    this.#renewChannel = options.renew;
  }

  /** Tasks not confirmed yet. */
  get size(): number {
    return this.#pending.size;
  }

  /** Whether adding more should wait for {@linkcode Outbox.waitForRoom}. */
  get full(): boolean {
    return this.#queued.length > 0 || this.#pending.size >= MAX_IN_FLIGHT;
  }

  /**
   * Publishes on `channel` of `model` from now on: everything unconfirmed goes out again on it,
   * in order, with the same ids.
   */
  attach(model: ChannelModel, channel: ConfirmChannel): void {
    if (this.#model !== model) {
      this.#ladder = undefined; // A new connection: declare the ladder again when needed.
      this.#ladderReady = false;
    }
    this.#model = model;
    channel.on("drain", () => {
      this.#blocked = false;
      this.#pump();
    });
    channel.on("error", (error: Error) => this.#refuseOversized(error));
    channel.on("return", (message: { properties: { messageId?: unknown } }) => {
      // The ladder is gone: the returned task goes out again once it is declared again.
      for (const pending of this.#pending.values()) {
        if (pending.task.id === message.properties.messageId) pending.returned = true;
      }
      this.#ladder = undefined;
      this.#ladderReady = false;
    });
    if (this.#pending.size > 0) {
      log("producer").info("Publishing again the {count} unconfirmed task(s)", {
        count: this.#pending.size,
      });
    }
    this.#queued = [...this.#pending.keys()];
    this.#channel = channel;
    this.#blocked = false;
    this.#pump();
  }

  /** The channel `channel` closed: nothing goes out until the next {@linkcode Outbox.attach}. */
  detach(channel: ConfirmChannel): boolean {
    if (this.#channel !== channel) return false;
    this.#channel = undefined;
    return true;
  }

  /** Queues a task for publishing. */
  add(pending: Pending): void {
    const key = this.#next++;
    this.#pending.set(key, pending);
    this.#queued.push(key);
    this.#pump();
  }

  /** Resolves once the channel takes more and fewer than the in-flight limit are unconfirmed. */
  waitForRoom(): Promise<void> {
    return new Promise((resolve) => this.#room.push(resolve));
  }

  /** Refuses every unconfirmed task with `error` (the connection gave up, or the producer closed). */
  failAll(error: unknown): void {
    for (const pending of this.#pending.values()) {
      pending.span.end();
      pending.refused(error instanceof Error ? error : new Error(String(error)));
    }
    this.#pending.clear();
    this.#queued = [];
    for (const resolve of this.#room.splice(0)) resolve();
  }

  /** Hands the queued tasks to the channel until it asks to wait for `drain`. */
  #pump(): void {
    const channel = this.#channel;
    while (channel !== undefined && !this.#blocked && this.#queued.length > 0) {
      const key = this.#queued[0]!;
      const pending = this.#pending.get(key);
      if (pending === undefined) {
        this.#queued.shift();
        continue;
      }
      const delayMs = pending.runAt === undefined ? 0 : pending.runAt - Date.now();
      if (delayMs > 0 && !this.#ladderReady) return this.#declareLadder(channel);
      this.#queued.shift();
      try {
        this.#blocked = !this.#publish(channel, key, pending, delayMs);
      } catch {
        // The channel is closing: the next attach publishes what is still unconfirmed.
        return;
      }
    }
    if (this.#queued.length === 0 && !this.#blocked && this.#pending.size < MAX_IN_FLIGHT) {
      for (const resolve of this.#room.splice(0)) resolve();
    }
  }

  #publish(channel: ConfirmChannel, key: number, pending: Pending, delayMs: number): boolean {
    pending.returned = false;
    const confirm = (error: unknown) => this.#confirm(channel, key, error);
    if (delayMs <= 0) {
      return channel.sendToQueue(this.#queue, pending.content, pending.properties, confirm);
    }
    const route = delayRoute(delayMs);
    const headers = {
      ...pending.properties.headers,
      [DELAY_QUEUE_HEADER]: this.#queue,
      [RUN_AT_HEADER]: new Date(pending.runAt!).toISOString(),
    };
    return channel.publish(route.exchange, route.routingKey, pending.content, {
      ...pending.properties,
      headers,
      mandatory: true,
    }, confirm);
  }

  /** Declares the ladder on `channel`'s connection, then goes on publishing. */
  #declareLadder(channel: ConfirmChannel): void {
    const model = this.#model;
    if (model === undefined) return;
    this.#ladder ??= (async () => {
      const declaring = await model.createChannel();
      declaring.on("error", () => {});
      try {
        await declareDelays(declaring, this.#queue);
      } finally {
        await declaring.close().catch(() => {});
      }
    })();
    this.#ladder.then(() => {
      this.#ladderReady = true;
      if (this.#channel === channel) this.#pump();
    }, (error) => {
      log("producer").warn("Could not declare the delays' ladder: {cause}; retrying", {
        cause: errorMessage(error),
      });
      this.#ladder = undefined;
      model.close().catch(() => {}); // Reconnecting tries again.
    });
  }

  #confirm(channel: ConfirmChannel, key: number, error: unknown): void {
    const pending = this.#pending.get(key);
    if (pending === undefined) return;
    if (!error && pending.returned) {
      this.#queued.push(key); // Unroutable: out again once the ladder is back.
      return this.#pump();
    } else if (!error) {
      this.#pending.delete(key);
      pending.span.end();
      pending.confirmed(pending.task);
    } else if (this.#channel === channel && isNacked(error)) {
      // A live broker could not take the task (a cluster electing a new queue leader, say):
      // publish it again a little later, for a while, then report it rather than loop.
      pending.firstNack ??= Date.now();
      if (Date.now() - pending.firstNack > NACK_PATIENCE_MS) {
        this.#pending.delete(key);
        pending.span.end();
        pending.refused(
          new TareasError(
            `The broker refused task #${pending.task.seq} ${pending.task.id} (basic.nack) for ` +
              `${NACK_PATIENCE_MS / 1000} s`,
          ),
        );
      } else {
        setTimeout(() => {
          if (this.#channel === channel && this.#pending.has(key)) this.#renew(channel);
        }, Math.min(1_000, 100 * 2 ** pending.nacks++));
      }
    }
    // Otherwise the channel closed: the task stays pending and goes out again after reconnecting.
    if (this.#pending.size < MAX_IN_FLIGHT && this.#queued.length === 0) this.#pump();
  }

  /**
   * Publishes what is unconfirmed again, on a new channel. Measured on 3.10: a channel opened
   * while a cluster elects a queue's new leader (0.1 s after the old leader's node died) refused
   * every publish for as long as it lived, while a channel opened later took them all.
   */
  #renew(channel: ConfirmChannel): void {
    const model = this.#model!;
    this.#channel = undefined;
    channel.close().catch(() => {});
    this.#renewChannel(model);
  }

  /**
   * A publish larger than the broker's `max_message_size` closes the channel: the tasks that
   * large are refused, for good, rather than published again forever.
   */
  #refuseOversized(error: Error): void {
    const max = maxMessageSize(error);
    if (max === undefined) return;
    for (const [key, pending] of this.#pending) {
      if (pending.content.byteLength <= max) continue;
      this.#pending.delete(key);
      pending.span.end();
      pending.refused(
        new TareasError(
          `The broker refused task #${pending.task.seq} ${pending.task.id}: its ` +
            `${pending.content.byteLength} bytes exceed the broker's max_message_size of ${max}`,
        ),
      );
    }
  }
}
