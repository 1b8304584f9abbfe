/**
 * The channels of the operations on dead letters: one operation at a time, each on two channels of
 * its own, and the passive check of a queue that says what a missing one means.
 * @module
 */
import type { Channel, ChannelModel, ConfirmChannel } from "../../deps/amqplib.ts";
import { withChannel, withConfirmChannel } from "../../core/broker_errors.ts";
import { ConfigError, TareasError } from "../../core/errors.ts";

/** The channels of one operation: `get` takes the messages, `publish` copies them (confirmed). */
export interface Channels {
  /** Takes the messages (`basic.get`) and acks them. */
  get: Channel;
  /** Publishes the copies, each confirmed. */
  publish: ConfirmChannel;
}

/** Runs `work` alone on two channels of its own; see {@linkcode serialChannels}. */
export type WithChannels = <T>(work: (channels: Channels) => Promise<T>) => Promise<T>;

/**
 * Returns a function that runs each `work` alone, after the one before (see `serial`), on two
 * channels of its own, closed after it, on the connection's current channel model (`model()`,
 * undefined while not connected). Should the connection be lost meanwhile, it fails at once
 * rather than wait forever on a reply that cannot come (amqplib leaves a `basic.get` in flight
 * unanswered).
 */
export function serialChannels(model: () => ChannelModel | undefined): WithChannels {
  let running: Promise<unknown> = Promise.resolve();
  /** One operation at a time: two passes at once would take each other's copies. */
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = running.then(work, work);
    running = next.catch(() => {});
    return next;
  };

  return <T>(work: (channels: Channels) => Promise<T>): Promise<T> =>
    serial(async () => {
      const current = model();
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
}

/**
 * Declares queue `name` passively and returns its message count.
 *
 * @throws {ConfigError} when it does not exist, with `what` that means.
 */
export async function checkQueue(
  channel: Channel,
  name: string,
  what: string,
): Promise<{ messageCount: number }> {
  try {
    return await channel.checkQueue(name);
  } catch (error) {
    throw new ConfigError(
      `Queue "${name}" does not exist: ${what}`,
      { cause: error },
    );
  }
}
