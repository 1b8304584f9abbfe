/**
 * How a worker publishes its events: coalesced, so that they cost little per task under load,
 * and confirmed, so that none is lost when a connection drops or a cluster moves the leader of a
 * watcher's queue. Each message carries an id; readers drop a message they have seen (a message
 * published again after a lost confirm).
 *
 * A refused message goes out again on a new channel: measured on RabbitMQ 3.10, a channel opened
 * while a cluster elects a queue's new leader (0.1 s after the old leader's node died) refused
 * every publish to that queue for as long as it lived, while a channel opened later took them all.
 * Workers that lost their node reconnect within that moment.
 *
 * Messages are published `mandatory`: the broker returns one that no queue was bound to, so the
 * publisher knows which event types someone listens to. Only those are worth sending before an
 * ack ({@linkcode EventPublisher.sendListened}). Events nobody listens to wait for
 * {@linkcode UNHEARD_WINDOW_MS}; then an empty message of their type (a JSON array of no events)
 * asks whether someone listens now: if the broker routes it, the events follow, and if it returns
 * it, they are dropped, as nobody would have received them. They are never encoded, nor carried to
 * the broker and back, which is most of what an event costs.
 * @module
 */
import type { ChannelModel, ConfirmChannel } from "../deps/amqplib.ts";
import { Buffer } from "node:buffer";
import { errorMessage } from "./errors.ts";
import {
  encodeEvents,
  eventsExchange,
  type EventType,
  MAX_EVENT_BYTES,
  type TareasEvent,
} from "./events.ts";
import { log } from "./log.ts";

/**
 * How long an event may wait to be published, in ms: events that happen within it travel
 * together, one message per event type (a worker sends them at once before an ack).
 */
export const EVENT_WINDOW_MS = 10;

/**
 * How long events of types nobody listens to may wait, in ms: they only have to reach a listener
 * that binds meanwhile (the first of its events that is routed makes the type listened again).
 */
export const UNHEARD_WINDOW_MS = 100;

/** Most events in one message. */
const MAX_BATCH = 100;

/** The body of a probe: no events. */
const NO_EVENTS = Buffer.from("[]");

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
  #model: ChannelModel | undefined;
  #channel: ConfirmChannel | undefined;
  #source = crypto.randomUUID().slice(0, 8);
  #sequence = 0;
  #buffer: TareasEvent[] = [];
  /** The types of the events in the buffer (and perhaps of some withdrawn since). */
  #bufferedTypes = new Set<EventType>();
  #ticker: ReturnType<typeof setInterval> | undefined;
  #idleTicks = 0;
  /** Ticks since the buffer was last sent, while it only held events nobody listens to. */
  #unheardTicks = 0;
  #unconfirmed = new Map<string, Outgoing>();
  #confirmed: (() => void)[] = [];
  /** Event types whose last confirmed message no queue was bound to (the broker returned it). */
  #unheard = new Set<EventType>();
  /** Ids of messages the broker returned and has not confirmed yet. */
  #returned = new Set<string>();
  /** The timer that opens a new channel after the broker refused a message. */
  #reopening: ReturnType<typeof setTimeout> | undefined;
  /** Events of a type nobody listened to, by the id of the probe that asks whether one does. */
  #probed = new Map<string, TareasEvent[]>();

  /** A publisher for the events of `queue`; it publishes nothing until it is attached. */
  constructor(queue: string) {
    this.#exchange = eventsExchange(queue);
  }

  /**
   * Publishes on a channel of its own on `model` from now on, or on none (`undefined`: the
   * connection is gone). What was not confirmed on the previous channel goes out again.
   */
  async attach(model: ChannelModel | undefined): Promise<void> {
    clearTimeout(this.#reopening);
    this.#model = model;
    const channel = this.#channel;
    this.#channel = undefined;
    channel?.close().catch(() => {});
    if (model !== undefined) await this.#open(model);
  }

  /**
   * Queues one event; it is published within {@linkcode EVENT_WINDOW_MS} ({@linkcode
   * UNHEARD_WINDOW_MS} while nobody listens to any queued type), or by `sendNow`.
   */
  publish(event: TareasEvent): void {
    this.#buffer.push(event);
    this.#bufferedTypes.add(event.type);
    if (this.#buffer.length >= MAX_BATCH) this.#sendBuffer();
    else this.#schedule();
  }

  /**
   * Publishes the queued events now, held ones too, whether or not someone listens to them (before
   * an ack that must not overtake them).
   */
  sendNow(): void {
    this.#sendBuffer(true);
  }

  /**
   * Publishes the queued events now if someone listens to one of their types, so that an ack
   * never overtakes a completion a watcher waits for; otherwise they go out with the window, in
   * one message with the events around them. A type is listened to until a message of it comes
   * back unrouted, and again as soon as one is routed.
   */
  sendListened(): void {
    if (this.#listenedWaiting()) this.#sendBuffer();
  }

  #listenedWaiting(): boolean {
    if (this.#buffer.length === 0) return false;
    for (const type of this.#bufferedTypes) if (!this.#unheard.has(type)) return true;
    return false;
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
    this.#sendBuffer(true);
    if (this.#unconfirmed.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#confirmed.push(resolve)),
      new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
  }

  /** Stops the ticker; queued events are sent first. */
  stop(): void {
    clearTimeout(this.#reopening);
    this.#sendBuffer(true);
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  async #open(model: ChannelModel): Promise<void> {
    const channel = await model.createConfirmChannel();
    let failed = false;
    channel.on("error", (error: Error) => {
      failed = true;
      log("events").debug("The events channel failed: {cause}", { cause: errorMessage(error) });
    });
    channel.on("return", (message: { properties: { messageId?: unknown } }) => {
      const id = message.properties.messageId;
      if (typeof id === "string") this.#returned.add(id);
    });
    channel.on("close", () => {
      if (this.#channel !== channel) return;
      this.#channel = undefined;
      // Closed by the broker under a live connection (not by a lost one): start over.
      if (failed && this.#model === model) {
        log("events").warn("The events channel closed; reconnecting");
        model.close().catch(() => {});
      }
    });
    if (this.#model !== model) {
      channel.close().catch(() => {}); // Attached elsewhere meanwhile.
      return;
    }
    this.#channel = channel;
    this.#returned.clear(); // Returns of the old channel: its messages go out again on this one.
    for (const outgoing of this.#unconfirmed.values()) this.#send(outgoing);
    this.#schedule();
  }

  /** Publishes on a new channel in place of `channel`, which refuses what it is given. */
  #reopen(channel: ConfirmChannel): void {
    const model = this.#model;
    if (this.#channel !== channel || model === undefined) return;
    this.#channel = undefined;
    channel.close().catch(() => {});
    this.#open(model).catch((error) => {
      // The connection is going: reconnecting attaches a new one.
      log("events").debug("No new events channel: {cause}", { cause: errorMessage(error) });
    });
  }

  /**
   * Makes sure queued events go out within their window. One ticker does it for every event (a
   * timer per event would cost more than the event), and stops after a while without any.
   */
  #schedule(): void {
    this.#ticker ??= setInterval(() => {
      if (this.#buffer.length === 0) {
        if (++this.#idleTicks > 100) {
          clearInterval(this.#ticker);
          this.#ticker = undefined;
        }
        return;
      }
      this.#idleTicks = 0;
      if (
        this.#listenedWaiting() || ++this.#unheardTicks >= UNHEARD_WINDOW_MS / EVENT_WINDOW_MS
      ) {
        this.#sendBuffer();
      }
    }, EVENT_WINDOW_MS);
  }

  /** Sends the queued events: in full, or a probe for types nobody listens to (unless `all`). */
  #sendBuffer(all = false): void {
    this.#unheardTicks = 0;
    this.#bufferedTypes.clear();
    if (all && this.#probed.size > 0) {
      this.#buffer = [...this.#probed.values(), this.#buffer].flat();
      this.#probed.clear();
    }
    if (this.#buffer.length === 0) return;
    const byType = Map.groupBy(this.#buffer, (event) => event.type);
    this.#buffer = [];
    for (const [type, events] of byType) {
      if (all || !this.#unheard.has(type)) this.#sendAll(type, events);
      else this.#probe(type, events);
    }
  }

  #sendAll(type: EventType, events: TareasEvent[]): void {
    for (const body of bodies(events)) {
      const outgoing: Outgoing = {
        id: `${this.#source}-${++this.#sequence}`,
        type,
        body,
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

  /**
   * Holds `events` while an empty message of their type asks whether someone listens now: routed,
   * they are sent; returned, refused or lost with the channel, they are dropped.
   */
  #probe(type: EventType, events: TareasEvent[]): void {
    const channel = this.#channel;
    if (channel === undefined) return;
    const id = `${this.#source}-${++this.#sequence}`;
    this.#probed.set(id, events);
    try {
      channel.publish(this.#exchange, type, NO_EVENTS, {
        contentType: "application/json",
        messageId: id,
        mandatory: true,
      }, (error) => {
        const returned = this.#returned.delete(id);
        const held = this.#probed.get(id);
        this.#probed.delete(id);
        if (error || returned) return;
        this.#unheard.delete(type);
        if (held !== undefined) this.#sendAll(type, held);
      });
    } catch {
      this.#probed.delete(id); // The channel is closing.
    }
  }

  #send(outgoing: Outgoing): void {
    const channel = this.#channel;
    if (channel === undefined) return; // Published again on the next channel.
    try {
      channel.publish(this.#exchange, outgoing.type, outgoing.body, {
        contentType: "application/json",
        messageId: outgoing.id,
        mandatory: true,
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
    // The broker returns an unroutable message before it confirms it.
    const returned = this.#returned.delete(outgoing.id);
    if (!error) {
      if (returned) this.#unheard.add(outgoing.type);
      else this.#unheard.delete(outgoing.type);
      this.#unconfirmed.delete(outgoing.id);
      if (this.#unconfirmed.size === 0) {
        for (const resolve of this.#confirmed.splice(0)) resolve();
      }
    } else if (channel === this.#channel && this.#unconfirmed.has(outgoing.id)) {
      // Refused by a live broker: again a little later, on a new channel (see the module doc).
      clearTimeout(this.#reopening);
      this.#reopening = setTimeout(
        () => this.#reopen(channel),
        Math.min(1_000, 50 * 2 ** outgoing.nacks++),
      );
    }
  }
}

/** Message bodies for events of one type, each within what readers accept (halving as needed). */
function bodies(events: TareasEvent[]): Buffer[] {
  const body = encodeEvents(events);
  if (body.byteLength <= MAX_EVENT_BYTES || events.length === 1) return [body];
  const half = Math.ceil(events.length / 2);
  return [...bodies(events.slice(0, half)), ...bodies(events.slice(half))];
}
