/**
 * Preloaded into our unmodified producer (`deno run --preload bench/_publish_hook.ts producer.ts`):
 * prints `bench publishing <epoch ms> <CPU ticks>` to stdout at its first publish on a confirm channel, so the
 * benchmark knows when its publish phase began, as it does for the floor's publisher and BullMQ's;
 * and, when the process ends, `bench confirmed <epoch ms>` with the time of the last confirm the
 * broker sent (the end of the publish phase).
 *
 * It wraps amqplib's `connect` (the module object is shared by every importer in the process) so
 * that each confirm channel the producer creates reports its first publish.
 * @module
 */
import amqp from "amqplib";
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { publishingLine } from "./_procfs.ts";
import { nowMs } from "./_util.ts";

let reported = false;
let lastConfirm: number | undefined;

globalThis.addEventListener("unload", () => {
  if (lastConfirm !== undefined) console.log(`bench confirmed ${lastConfirm}`);
});

/** Wraps a publish call's confirm callback (its last argument, if a function) to time it. */
function timed<A extends unknown[]>(args: A): A {
  const last = args.length - 1;
  const callback = args[last];
  if (typeof callback !== "function") return args;
  const copy = [...args] as unknown[];
  copy[last] = (error: unknown, ...rest: unknown[]) => {
    if (error == null) lastConfirm = nowMs();
    return callback(error, ...rest);
  };
  return copy as A;
}

function report(): void {
  if (reported) return;
  reported = true;
  console.log(publishingLine(nowMs()));
}

function hookChannel(channel: ConfirmChannel): void {
  const publish = channel.publish;
  const sendToQueue = channel.sendToQueue;
  channel.publish = function (...args: Parameters<ConfirmChannel["publish"]>) {
    report();
    return publish.apply(this, timed(args));
  };
  channel.sendToQueue = function (...args: Parameters<ConfirmChannel["sendToQueue"]>) {
    report();
    return sendToQueue.apply(this, timed(args));
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
