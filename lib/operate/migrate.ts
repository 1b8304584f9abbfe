/**
 * Turning a queue made by the original scripts (a classic queue) into tareas' quorum queue of the
 * same name without losing a message. Every message goes through a temporary quorum queue
 * `<queue>.migrating`, published with confirms and acked at its source only once confirmed. Each
 * step is chosen from what the broker says (which queues exist, of which type, how many messages
 * they hold), so a migration stopped anywhere, even by SIGKILL, is resumed by running it again: a
 * crash may leave duplicates, never a loss.
 *
 * The steps: the classic queue → `<queue>.migrating`; delete the classic queue only if it is empty
 * and unused; declare tareas' topology; `<queue>.migrating` → the work queue; delete the temporary
 * queue once it is empty. A broker-side lock (an exclusive queue) keeps two migrations of one queue
 * from running at once and is released by the broker if the process dies.
 * @module
 */
import type { Channel, ChannelModel, ConsumeMessage, Options } from "../deps/amqplib.ts";
import {
  isNotFound,
  isPreconditionFailed,
  isResourceLocked,
  withChannel,
  withConfirmChannel,
} from "../core/broker_errors.ts";
import { ConfigError, errorMessage, TareasError } from "../core/errors.ts";
import { declareTopology, inspectWorkQueue, migrateCommand } from "../core/topology.ts";

/** Name of the temporary quorum queue that holds the messages of `queue` while it is migrated. */
export function migratingQueue(queue: string): string {
  return `${queue}.migrating`;
}

/** What a migration is doing, for progress lines. */
export type MigrateEvent =
  | {
    type: "found";
    queue: string;
    /** What the work queue is before this run. */
    kind: "classic" | "tareas" | "missing";
    /** Messages ready in the work queue. */
    messageCount: number;
    /** Messages in the temporary queue left by an interrupted run, or undefined if none. */
    migrating: number | undefined;
  }
  | {
    type: "moving" | "moved";
    /** `out`: from the classic queue to the temporary one; `back`: into the work queue. */
    phase: "out" | "back";
    from: string;
    to: string;
    /** Messages confirmed at `to` in this phase of this run. */
    moved: number;
    /** Estimate of the messages this phase moves: `moved` plus those ready in `from`. */
    total: number;
  }
  | { type: "deleted"; queue: string }
  | { type: "declared"; queue: string };

/** Options of {@linkcode migrateQueue}. */
export interface MigrateOptions {
  /** Messages moved per confirmed batch; also the most held unacked at once. @default {100} */
  batchSize?: number;
  /** Stops the migration between two batches; a later run resumes it. */
  signal?: AbortSignal;
  /**
   * Called at each step. A `moved` event is called once its batch is confirmed at the destination
   * and before it is acked at the source.
   * @default {no-op}
   */
  onProgress?: (event: MigrateEvent) => void;
}

/** What a migration did. */
export interface MigrateResult {
  /** `nothing` when the queue already was tareas' and no interrupted run was left. */
  outcome: "migrated" | "nothing";
  /** Messages moved from the classic queue to the temporary one in this run. */
  movedOut: number;
  /** Messages moved from the temporary queue into the work queue in this run. */
  movedBack: number;
  /**
   * Messages moved back in this run whose message id had already been moved back in this run:
   * copies an interrupted run left (messages without an id are not counted).
   */
  duplicates: number;
  /** Whether this run found the temporary queue of an interrupted run. */
  resumed: boolean;
  /** Messages ready in the work queue at the end. */
  ready: number;
}

/**
 * Turns `queue` into tareas' quorum work queue, moving every message of the classic queue of
 * that name through `<queue>.migrating`. Resumes an interrupted migration. Duplicates are
 * possible after a crash, losses are not.
 *
 * @throws {ConfigError} when consumers are attached to the classic queue, when the queue is
 * neither classic nor tareas', or when it does not exist.
 * @throws {TareasError} when the migration stopped (aborted, connection lost, a publish
 * refused): what was moved stays moved; run it again to resume.
 * @example
 * ```ts
 * const result = await migrateQueue(model, "tareas_distribuidas", {
 *   onProgress: (event) => console.log(event),
 * });
 * ```
 */
export async function migrateQueue(
  model: Pick<ChannelModel, "createChannel" | "createConfirmChannel">,
  queue: string,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const { batchSize = 100, signal, onProgress = () => {} } = options;
  // The lock's channel lives as long as the migration.
  return await withChannel(model, async (lock) => {
    await takeLock(lock, queue);
    try {
      return await migrateLocked(model, queue, { batchSize, signal, onProgress });
    } catch (error) {
      if (error instanceof TareasError) throw error;
      const cause = signal?.aborted ? "interrupted" : errorMessage(error);
      throw new TareasError(
        `Migration of queue "${queue}" stopped: ${cause}; no message is lost: run ` +
          `${migrateCommand(queue)} again to resume`,
        { cause: error },
      );
    } finally {
      await lock.deleteQueue(lockQueue(queue)).catch(() => {});
    }
  });
}

/** {@linkcode migrateQueue}'s steps, run once it holds the lock. */
async function migrateLocked(
  model: Pick<ChannelModel, "createChannel" | "createConfirmChannel">,
  queue: string,
  moving: Omit<MoveOptions, "onMessage">,
): Promise<MigrateResult> {
  const { onProgress } = moving;
  const temporary = migratingQueue(queue);
  const result = { movedOut: 0, movedBack: 0, duplicates: 0 };
  let found = await inspectWorkQueue(model, queue);
  const left = await countOf(model, temporary);
  if (found.kind === "other") {
    throw new ConfigError(
      `Cannot migrate queue "${queue}": it is neither a classic queue nor tareas' work queue ` +
        `(${found.detail ?? "another type"}); migrate only converts classic queues`,
    );
  }
  if (found.kind === "missing" && left === undefined) {
    throw new ConfigError(`Cannot migrate queue "${queue}": it does not exist`);
  }
  onProgress({
    type: "found",
    queue,
    kind: found.kind,
    messageCount: found.messageCount,
    migrating: left,
  });
  if (found.kind === "tareas" && left === undefined) {
    return { outcome: "nothing", ...result, resumed: false, ready: found.messageCount };
  }
  while (found.kind === "classic") {
    if (found.consumerCount > 0) {
      throw new ConfigError(
        `Cannot migrate queue "${queue}": ${found.consumerCount} consumer(s) still attached ` +
          "to it (workers of the original scripts?); stop them and run the migration again",
      );
    }
    await declareMigrating(model, temporary);
    result.movedOut += await move(model, queue, temporary, "out", moving);
    if (await deleteClassic(model, queue)) {
      onProgress({ type: "deleted", queue });
      break;
    }
    found = await inspectWorkQueue(model, queue); // Published to or consumed meanwhile.
  }
  await withChannel(model, (channel) => declareTopology(channel, queue, model));
  onProgress({ type: "declared", queue });
  await declareMigrating(model, temporary);
  const seen = new Set<string>();
  result.movedBack = await move(model, temporary, queue, "back", {
    ...moving,
    onMessage: (message) => {
      const id = message.properties.messageId;
      if (typeof id !== "string") return;
      if (seen.has(id)) result.duplicates++;
      else seen.add(id);
    },
  });
  await deleteTemporary(model, temporary);
  onProgress({ type: "deleted", queue: temporary });
  const ready = (await inspectWorkQueue(model, queue)).messageCount;
  return { outcome: "migrated", ...result, resumed: left !== undefined, ready };
}

/**
 * Arguments of the temporary queue: quorum, and an explicit delivery limit far beyond any series
 * of interrupted runs (RabbitMQ 4 defaults to 20 and would then drop a message with no
 * dead-letter exchange).
 */
const MIGRATING_ARGUMENTS = { "x-queue-type": "quorum", "x-delivery-limit": 1_000_000 };

/** Headers the broker maintains per queue: copied, they would count the old queue's deliveries. */
const BROKER_COUNTERS = new Set(["x-delivery-count", "x-acquired-count"]);

/** How long a batch waits for one more delivery before it goes with what it has. */
const IDLE_MS = 1000;

interface MoveOptions {
  batchSize: number;
  signal: AbortSignal | undefined;
  onProgress: (event: MigrateEvent) => void;
  onMessage?: (message: ConsumeMessage) => void;
}

/** Moves every message of `from` to `to`, in confirmed batches; returns how many it moved. */
function move(
  model: Pick<ChannelModel, "createConfirmChannel">,
  from: string,
  to: string,
  phase: "out" | "back",
  options: MoveOptions,
): Promise<number> {
  // Closing the channel at the end: acks already sent are processed before the close; anything
  // unacked goes back to `from`.
  return withConfirmChannel(model, async (channel) => {
    let failure: Error | undefined;
    channel.on("error", (error: Error) => failure ??= error);
    let returned = 0;
    channel.on("return", () => returned++);
    try {
      await channel.prefetch(options.batchSize);
      let moved = 0;
      let total = (await channel.checkQueue(from)).messageCount;
      options.onProgress({ type: "moving", phase, from, to, moved, total });
      for (let empty = 0;;) {
        options.signal?.throwIfAborted();
        const ready = (await channel.checkQueue(from)).messageCount;
        if (ready === 0) return moved;
        total = Math.max(total, moved + ready);
        const batch = await take(channel, from, Math.min(options.batchSize, ready));
        if (batch.length === 0) {
          // Counted as ready but never delivered (expired, or taken by someone else): look again.
          if (++empty === 3) throw new Error(`"${from}" reports messages but delivers none`);
          continue;
        }
        empty = 0;
        returned = 0;
        for (const message of batch) {
          options.onMessage?.(message);
          // Mandatory: should `to` be gone, the message comes back instead of being confirmed.
          channel.sendToQueue(to, message.content, { ...copyProperties(message), mandatory: true });
        }
        await channel.waitForConfirms();
        if (returned > 0) throw new Error(`${returned} message(s) could not be routed to "${to}"`);
        moved += batch.length;
        options.onProgress({ type: "moved", phase, from, to, moved, total });
        channel.ack(batch.at(-1)!, true);
      }
    } catch (error) {
      throw failure ?? error;
    }
  });
}

/**
 * Consumes up to `want` messages of `queue` (fewer if none arrives for {@linkcode IDLE_MS}), then
 * cancels the consumer: every message delivered before the cancel is in the batch, unacked.
 */
async function take(channel: Channel, queue: string, want: number): Promise<ConsumeMessage[]> {
  const batch: ConsumeMessage[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  let timer = setTimeout(resolve, IDLE_MS);
  const { consumerTag } = await channel.consume(queue, (message) => {
    clearTimeout(timer);
    if (message === null) return resolve(); // Cancelled by the broker: the queue is gone.
    batch.push(message);
    if (batch.length >= want) resolve();
    else timer = setTimeout(resolve, IDLE_MS);
  });
  try {
    await promise;
  } finally {
    clearTimeout(timer);
  }
  await channel.cancel(consumerTag);
  return batch;
}

/**
 * The publish options that reproduce a message: every property but `userId` (the broker checks it
 * against the publishing user) and the broker's delivery counters in the headers.
 */
function copyProperties(message: ConsumeMessage): Options.Publish {
  const { headers, userId: _, clusterId: __, ...properties } = message.properties;
  const options: Options.Publish = {};
  for (const [key, value] of Object.entries(properties)) {
    if (value !== undefined) (options as Record<string, unknown>)[key] = value;
  }
  if (headers !== undefined) {
    options.headers = Object.fromEntries(
      Object.entries(headers).filter(([key]) => !BROKER_COUNTERS.has(key)),
    );
  }
  return options;
}

function declareMigrating(
  model: Pick<ChannelModel, "createChannel">,
  temporary: string,
): Promise<void> {
  return withChannel(model, async (channel) => {
    try {
      await channel.assertQueue(temporary, { durable: true, arguments: MIGRATING_ARGUMENTS });
    } catch (error) {
      throw new ConfigError(
        `Cannot declare the temporary queue "${temporary}": ${errorMessage(error)}; ` +
          "it belongs to something else: delete or rename it",
        { cause: error },
      );
    }
  });
}

/** Messages ready in `queue`, or undefined when it does not exist. */
function countOf(
  model: Pick<ChannelModel, "createChannel">,
  queue: string,
): Promise<number | undefined> {
  return withChannel(model, (channel) => channel.checkQueue(queue)).then(
    ({ messageCount }) => messageCount,
    (error: unknown) => isNotFound(error) ? undefined : Promise.reject(error),
  );
}

/**
 * Deletes the classic queue if it is empty and nobody consumes it (the broker checks both);
 * returns false when it is not, so the caller looks at it again.
 */
async function deleteClassic(
  model: Pick<ChannelModel, "createChannel">,
  queue: string,
): Promise<boolean> {
  const empty = { ifEmpty: true, ifUnused: true };
  try {
    await withChannel(model, (channel) => channel.deleteQueue(queue, empty));
    return true;
  } catch (error) {
    if (isPreconditionFailed(error)) return false;
    throw error;
  }
}

/**
 * Deletes the temporary queue once it holds nothing. Quorum queues refuse the if-empty flag (it
 * closes the connection on 3.10), so the count is checked first; only a migration publishes to
 * it, and the lock keeps this one the only one.
 */
function deleteTemporary(
  model: Pick<ChannelModel, "createChannel">,
  temporary: string,
): Promise<void> {
  return withChannel(model, async (channel) => {
    const { messageCount, consumerCount } = await channel.checkQueue(temporary);
    if (messageCount > 0 || consumerCount > 0) {
      throw new Error(
        `"${temporary}" still holds ${messageCount} message(s) and ${consumerCount} consumer(s)`,
      );
    }
    await channel.deleteQueue(temporary);
  });
}

function lockQueue(queue: string): string {
  return `${migratingQueue(queue)}.lock`;
}

/**
 * Takes the broker-side lock of `queue`'s migration on `channel`: an exclusive queue, which the
 * broker deletes when this connection dies.
 */
async function takeLock(channel: Channel, queue: string): Promise<void> {
  try {
    await channel.assertQueue(lockQueue(queue), {
      exclusive: true,
      durable: false,
      arguments: { "x-queue-type": "classic" },
    });
  } catch (error) {
    if (!isResourceLocked(error)) throw error;
    throw new TareasError(`Cannot migrate queue "${queue}": another migration of it is running`, {
      cause: error,
    });
  }
}
