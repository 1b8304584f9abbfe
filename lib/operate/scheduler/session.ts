/**
 * One connection's hold on the lease: its channel, in transaction mode, consuming the lease
 * queue; the tokens delivered on it and not yet acked; and the commit that fires ticks and
 * replaces those tokens with one.
 * @module
 */
import type { Channel, ChannelModel, ConsumeMessage } from "../../deps/amqplib.ts";
import { errorMessage } from "../../core/errors.ts";
import { createTask, encodeTask, taskProperties } from "../../core/task.ts";
import { declareTopology } from "../../core/topology.ts";
import { declareLease, leaseQueue, needsToken, tickTaskId, TOKEN_PROPERTIES } from "./lease.ts";
import { decodeRecord, encodeRecord, mergeRecords, type TickRecord } from "./record.ts";
import type { Plan } from "./ticks.ts";
import { txCommit, txSelect } from "./tx.ts";

/** Tokens the broker may deliver at once: all of them, when two schedulers made one each. */
const TOKEN_PREFETCH = 50;

/** What a session tells its scheduler. */
export interface SessionHooks {
  /** A token arrived (or a message that is not one: `error` says why; the commit drops it). */
  onToken(error?: unknown): void;
  /** It ended ({@linkcode LeaseSession.end}), called once; maybe before `open` resolved. */
  onEnd(session: LeaseSession, reason: string): void;
}

/** Options of {@linkcode LeaseSession.open}. */
export interface SessionOptions {
  /** The work queue. */
  queue: string;
  /** The scheduler's name, written in the token. */
  by: string;
  /** What it tells the scheduler. */
  hooks: SessionHooks;
}

/** A scheduler's session on the lease of one connection; see the module's documentation. */
export class LeaseSession {
  /** The connection it lives on. */
  readonly model: ChannelModel;
  /** When it received its first token: it leads from then until it ends. */
  leadSince: number | undefined;
  /** When it last committed, 0 before its first commit. */
  committed = 0;
  #ended = false;
  #hooks: SessionHooks;
  #channel: Channel;
  #queue: string;
  #by: string;
  /** Delivered and not yet acked, with their record (undefined for a message not a token). */
  #held = new Map<number, { message: ConsumeMessage; record: TickRecord | undefined }>();

  private constructor(model: ChannelModel, channel: Channel, options: SessionOptions) {
    this.model = model;
    this.#channel = channel;
    this.#queue = options.queue;
    this.#by = options.by;
    this.#hooks = options.hooks;
  }

  /**
   * Opens a session: declares the work queue and the lease, makes the first token if there is
   * none, and consumes the lease. Resolves once consuming, standing by until a token comes.
   *
   * @throws {ConfigError} when the work queue or the lease queue exists with other arguments.
   */
  static async open(
    model: ChannelModel,
    options: SessionOptions,
  ): Promise<{ session: LeaseSession; madeToken: boolean }> {
    const { queue, by, hooks } = options;
    const channel = await model.createChannel();
    const session = new LeaseSession(model, channel, options);
    let reason = "its channel closed";
    channel.on("error", (error: Error) => reason = `its channel failed: ${errorMessage(error)}`);
    channel.on("close", () => session.end(reason));
    await declareTopology(channel, queue, model);
    await declareLease(channel, queue);
    await txSelect(channel);
    const madeToken = needsToken(await channel.checkQueue(leaseQueue(queue)));
    if (madeToken) {
      channel.sendToQueue(leaseQueue(queue), encodeRecord(new Map(), by), TOKEN_PROPERTIES);
      await txCommit(channel);
    }
    await channel.prefetch(TOKEN_PREFETCH);
    await channel.consume(leaseQueue(queue), (message) => {
      // null: the lease queue was deleted; reconnecting declares it again.
      if (message === null) return session.end("the broker cancelled its consumer");
      let record: TickRecord | undefined;
      let error: unknown;
      try {
        record = decodeRecord(message.content);
      } catch (cause) {
        error = cause;
      }
      session.#held.set(message.fields.deliveryTag, { message, record });
      hooks.onToken(error);
    });
    return { session, madeToken };
  }

  /** How many tokens it holds: with one or more, it leads. */
  get tokens(): number {
    return this.#ended ? 0 : this.#held.size;
  }

  /** Whether it ended: its tokens went back to the lease queue, or will when the socket closes. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Marks it ended, once, and tells the scheduler why. */
  end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#hooks.onEnd(this, reason);
  }

  /** The record of the tokens held, merged. */
  record(): TickRecord {
    return mergeRecords([...this.#held.values()].flatMap(({ record }) => record ? [record] : []));
  }

  /**
   * One transaction: the tasks of the due ticks, the new token carrying the plan's record, the
   * acks of the tokens held. Until `tx.commit` reaches the broker none of it exists; after, all
   * of it. Rejects when the channel or connection is gone.
   */
  async commit(plan: Pick<Plan, "due" | "record">): Promise<void> {
    const channel = this.#channel;
    for (const { schedule, at } of plan.due) {
      const id = tickTaskId(schedule.id, at);
      const task = createTask(schedule.payload, { id, name: schedule.name });
      channel.sendToQueue(this.#queue, encodeTask(task), taskProperties(task));
    }
    const token = encodeRecord(plan.record, this.#by);
    channel.sendToQueue(leaseQueue(this.#queue), token, TOKEN_PROPERTIES);
    const acked = [...this.#held.values()].map(({ message }) => message);
    for (const message of acked) channel.ack(message);
    await txCommit(channel);
    // The new token may already be here, under a new tag: only the acked ones go.
    for (const message of acked) this.#held.delete(message.fields.deliveryTag);
    this.committed = Date.now();
  }
}
