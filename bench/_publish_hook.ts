/**
 * Preloaded into our unmodified producer (`deno run --preload bench/_publish_hook.ts producer.ts`):
 * prints `bench publishing <epoch ms>` to stdout at its first publish on a confirm channel, so the
 * benchmark knows when its publish phase began, as it does for the floor's publisher and BullMQ's.
 *
 * It wraps amqplib's `connect` (the module object is shared by every importer in the process) so
 * that each confirm channel the producer creates reports its first publish.
 * @module
 */
import amqp from "amqplib";
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { nowMs } from "./_util.ts";

let reported = false;

function report(): void {
  if (reported) return;
  reported = true;
  console.log(`bench publishing ${nowMs()}`);
}

function hookChannel(channel: ConfirmChannel): void {
  const publish = channel.publish;
  const sendToQueue = channel.sendToQueue;
  channel.publish = function (...args: Parameters<ConfirmChannel["publish"]>) {
    report();
    return publish.apply(this, args);
  };
  channel.sendToQueue = function (...args: Parameters<ConfirmChannel["sendToQueue"]>) {
    report();
    return sendToQueue.apply(this, args);
  };
}

function hookModel(model: Pick<ChannelModel, "createConfirmChannel">): void {
  const create = model.createConfirmChannel;
  model.createConfirmChannel = async function (...args) {
    const channel = await create.apply(this, args);
    hookChannel(channel);
    return channel;
  };
}

type Connect = (url: unknown, options?: Record<string, unknown>) => Promise<ChannelModel>;
const mutable = amqp as unknown as { connect: Connect };
const connect = mutable.connect;
mutable.connect = function (url, options) {
  const recovery = options?.recovery as { setup?: (model: ChannelModel) => unknown } | undefined;
  if (recovery?.setup) {
    const setup = recovery.setup;
    options = {
      ...options,
      recovery: {
        ...recovery,
        setup: (model: ChannelModel) => {
          hookModel(model);
          return setup(model);
        },
      },
    };
    return connect.call(this, url, options);
  }
  return connect.call(this, url, options).then((model) => {
    hookModel(model);
    return model;
  });
};
