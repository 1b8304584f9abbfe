/**
 * How a worker publishes its events: coalesced, so that they cost about nothing per task under
 * load, and confirmed, so that none is lost when a connection drops or a cluster moves the
 * leader of a watcher's queue. Each message carries an id; readers drop a message they have
 * seen (a batch published again after a lost confirm).
 * @module
 */
import type { ConfirmChannel } from "amqplib";
import type { Buffer } from "node:buffer";
import { errorMessage } from "./errors.ts";
import { encodeEvents, eventsExchange, type EventType, type TareasEvent } from "./events.ts";
import { log } from "./log.ts";

/**
 * Least time between two messages of events, in ms: events that happen within it travel
 * together, one message per event type. After a quiet spell an event goes out at once.
 */
export const EVENT_WINDOW_MS = 10;

/** Most events in one message. */
const MAX_BATCH = 100;

/** Unconfirmed messages kept to publish again; beyond, the oldest are dropped (and logged). */
const MAX_UNCONFIRMED = 10_000;

/** A message of events, kept until the broker confirms it. */
interface Outgoing {
  id: string;
  type: EventType;
  body: Buffer;
  /** Refused by the broker this many times (basic.nack). */
  nacks: number;
}

/** Publishes the events of one queue; see the module documentation. */
export class EventPublisher {
  #exchange: string;
  #channel: ConfirmChannel | undefined;
  #source = crypto.randomUUID().slice(0, 8);
  #sequence = 0;
  #buffer: TareasEvent[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lastSend = -Infinity;
  #unconfirmed = new Map<string, Outgoing>();
  #confirmed: (() => void)[] = [];

  /** A publisher for the events of `queue`; it publishes nothing until it has a channel. */
  constructor(queue: string) {
    this.#exchange = eventsExchange(queue);
  }

  /**
   * The confirm channel to publish on from now on (`undefined` while there is none). Messages
   * not confirmed on the previous channel are published again on the new one.
   */
  set channel(channel: ConfirmChannel | undefined) {
    this.#channel = channel;
    if (channel === undefined) return;
    for (const outgoing of this.#unconfirmed.values()) this.#send(outgoing);
    this.#schedule();
  }

  /** Queues one event; it is published within {@linkcode EVENT_WINDOW_MS}, or by `sendNow`. */
  publish(event: TareasEvent): void {
    this.#buffer.push(event);
    if (this.#buffer.length >= MAX_BATCH) this.#sendBuffer();
    else this.#schedule();
  }

  /** Publishes the queued events now (before an ack that must not overtake them). */
  sendNow(): void {
    this.#sendBuffer();
  }

  /**
   * Takes back a queued event that has not been published yet; returns whether it had not.
   * A worker takes back the `task.started` of a task that ended within the window: its
   * `task.completed` (with `durationMs`) says it all, in one message instead of two.
   */
  withdraw(event: TareasEvent): boolean {
    const index = this.#buffer.lastIndexOf(event);
    if (index === -1) return false;
    this.#buffer.splice(index, 1);
    return true;
  }

  /**
   * Publishes what is queued and resolves once the broker has confirmed every event so far, or
   * after `timeoutMs` (a broker that is gone).
   */
  async flush(timeoutMs = 5_000): Promise<void> {
    this.#sendBuffer();
    if (this.#unconfirmed.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#confirmed.push(resolve)),
      new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#buffer.length === 0) return;
    const wait = Math.max(0, this.#lastSend + EVENT_WINDOW_MS - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#sendBuffer();
    }, wait);
  }

  #sendBuffer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer.length === 0) return;
    this.#lastSend = performance.now();
    const byType = Map.groupBy(this.#buffer, (event) => event.type);
    this.#buffer = [];
    for (const [type, events] of byType) {
      const outgoing: Outgoing = {
        id: `${this.#source}-${++this.#sequence}`,
        type,
        body: encodeEvents(events),
        nacks: 0,
      };
      this.#unconfirmed.set(outgoing.id, outgoing);
      this.#send(outgoing);
    }
    if (this.#unconfirmed.size > MAX_UNCONFIRMED) {
      const [oldest] = this.#unconfirmed.keys();
      this.#unconfirmed.delete(oldest!);
      log("events").debug("Dropped unconfirmed events {id}: too many waiting", { id: oldest });
    }
  }

  #send(outgoing: Outgoing): void {
    const channel = this.#channel;
    if (channel === undefined) return; // Published again on the next channel.
    try {
      channel.publish(this.#exchange, outgoing.type, outgoing.body, {
        contentType: "application/json",
        messageId: outgoing.id,
      }, (error) => this.#onConfirm(channel, outgoing, error));
    } catch (error) {
      // The channel is closing: the next one publishes it again.
      log("events").debug("Events {id} not published yet: {cause}", {
        id: outgoing.id,
        cause: errorMessage(error),
      });
    }
  }

  #onConfirm(channel: ConfirmChannel, outgoing: Outgoing, error: unknown): void {
    if (!error) {
      this.#unconfirmed.delete(outgoing.id);
      if (this.#unconfirmed.size === 0) {
        for (const resolve of this.#confirmed.splice(0)) resolve();
      }
    } else if (channel === this.#channel && this.#unconfirmed.has(outgoing.id)) {
      // Refused by a live broker (a queue electing its leader): again, a little later.
      setTimeout(() => {
        if (this.#channel === channel) this.#send(outgoing);
      }, Math.min(1_000, 50 * 2 ** outgoing.nacks++));
    }
  }
}
