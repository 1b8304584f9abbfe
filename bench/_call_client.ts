/**
 * The caller of the call scenario: connects as one system's client, makes `--warmup` calls that
 * are not measured, then for each number K of `--in-flight` makes `--calls` calls with K in flight
 * at once (K loops, each starting its next call when its last one has returned), timing each from
 * just before the call to its result, and prints
 * `bench rtt <K> <elapsed ms> <round trip of each call, ms, comma-separated>`. Every result is
 * checked to be the responder's `{"ok":true}`.
 *
 * - `ours`: `createProducer` and `producer.call({ seq })`, to a `worker.ts` serving the queue.
 * - `floor`: plain amqplib (`noDelay`): a quorum reply queue of its own declared as our reply
 *   queue is (x-expires 30 min), consumed with prefetch 1,000 and acked; each request published
 *   persistent to the request queue through a confirm channel with `reply_to` and
 *   `correlation_id`; a call returns once its publish is confirmed and its reply has come.
 * - `bullmq`: `queue.add` and `job.waitUntilFinished(queueEvents)`, with constructed ioredis
 *   clients. Completed jobs are removed beyond the last 1,000 (`removeOnComplete: { count:
 *   1000 }`): with `removeOnComplete: true` a job may be gone before `waitUntilFinished` looks at
 *   it, which then fails with "Missing key for job".
 *
 * `ours` and `floor` print `bench reply <queue>` once they know the name of their reply queue,
 * for the benchmark to delete it.
 *
 * `deno run --allow-all bench/_call_client.ts --system ours|floor|bullmq --queue Q --calls N
 * [--in-flight 1,10] [--warmup W]`
 * @module
 */
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { isDeepStrictEqual } from "node:util";
import { Queue, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import amqp from "../lib/deps/amqplib.ts";
import { createProducer } from "../lib/core/producer/mod.ts";
import { REPLY_QUEUE_EXPIRES_MS } from "../lib/core/results.ts";
import { CALL_RESULT } from "./_result_handler.ts";
import { amqpUrl, nowMs, redisUrl } from "./_util.ts";

/** One system's client. */
interface Caller {
  /** Makes one call and resolves with its result. */
  call(seq: number): Promise<unknown>;
  /** The reply queue, when the system has one of its own. */
  replyQueue(): string | undefined;
  /** Closes the client. */
  close(): Promise<void>;
}

const SYSTEMS = ["ours", "floor", "bullmq"] as const;

/**
 * Notes the names of the queues starting with `prefix` that any amqplib channel of this process
 * declares. The library never tells its reply queue's name, and the queue outlives its producer
 * for 30 minutes: the benchmark deletes it. Only `assertQueue` is wrapped (called once here).
 */
async function watchDeclares(prefix: string): Promise<string[]> {
  const probe = await amqp.connect(amqpUrl());
  type AssertQueue = (this: unknown, queue: string, ...rest: unknown[]) => Promise<unknown>;
  const proto = Object.getPrototypeOf(await probe.createChannel()) as { assertQueue: AssertQueue };
  await probe.close();
  const names: string[] = [];
  const original = proto.assertQueue;
  proto.assertQueue = function (queue, ...rest) {
    if (typeof queue === "string" && queue.startsWith(prefix)) names.push(queue);
    return original.call(this, queue, ...rest);
  };
  return names;
}

async function ours(queue: string): Promise<Caller> {
  const declared = await watchDeclares(`${queue}.reply.`);
  const producer = await createProducer({ url: amqpUrl(), queue });
  return {
    call: (seq) => producer.call({ seq }),
    replyQueue: () => declared[0],
    close: () => producer.close(),
  };
}

async function floor(queue: string): Promise<Caller> {
  const connection = await amqp.connect(amqpUrl(), { noDelay: true });
  const publish = await connection.createConfirmChannel();
  const consume = await connection.createChannel();
  const replyQueue = `${queue}.reply.${crypto.randomUUID()}`;
  await consume.assertQueue(replyQueue, {
    durable: true,
    arguments: { "x-queue-type": "quorum", "x-expires": REPLY_QUEUE_EXPIRES_MS },
  });
  await consume.prefetch(1_000);
  const waiting = new Map<string, (result: unknown) => void>();
  await consume.consume(replyQueue, (message) => {
    if (message === null) return;
    consume.ack(message);
    const id = message.properties.correlationId;
    const resolve = waiting.get(id);
    if (resolve === undefined) return;
    waiting.delete(id);
    resolve((JSON.parse(message.content.toString()) as { result: unknown }).result);
  }, { noAck: false });
  return {
    async call(seq) {
      const id = crypto.randomUUID();
      const reply = new Promise<unknown>((resolve) => waiting.set(id, resolve));
      // Shaped like our task's body: an id, the position, a creation time and the payload.
      const body = Buffer.from(JSON.stringify({
        id,
        seq,
        complexity: 0,
        createdAt: new Date().toISOString(),
        payload: { seq },
      }));
      await new Promise<void>((resolve, reject) => {
        publish.sendToQueue(queue, body, {
          persistent: true,
          messageId: id,
          correlationId: id,
          replyTo: replyQueue,
          contentType: "application/json",
        }, (error) => error ? reject(error) : resolve());
      });
      return await reply;
    },
    replyQueue: () => replyQueue,
    close: () => connection.close(),
  };
}

async function bullmq(name: string): Promise<Caller> {
  const connection = new Redis(redisUrl());
  const eventsConnection = new Redis(redisUrl(), { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection: eventsConnection });
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  return {
    async call(seq) {
      const job = await queue.add("task", { seq }, { removeOnComplete: { count: 1_000 } });
      return await job.waitUntilFinished(events);
    },
    replyQueue: () => undefined,
    async close() {
      await events.close();
      await queue.close();
      connection.disconnect();
      eventsConnection.disconnect();
    },
  };
}

/** Makes `calls` calls, `inFlight` at once; returns each one's round trip and the elapsed time. */
async function measure(
  caller: Caller,
  calls: number,
  inFlight: number,
): Promise<{ rtts: number[]; elapsedMs: number }> {
  const rtts: number[] = [];
  let next = 0;
  const started = nowMs();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < calls) {
      const seq = next++;
      const at = nowMs();
      const result = await caller.call(seq);
      rtts.push(nowMs() - at);
      if (!isDeepStrictEqual(result, CALL_RESULT)) {
        throw new Error(`Call ${seq} returned ${JSON.stringify(result)}, not the responder's`);
      }
    }
  }));
  return { rtts, elapsedMs: nowMs() - started };
}

const USAGE = "Usage: _call_client.ts --system ours|floor|bullmq --queue Q --calls N " +
  "[--in-flight 1,10] [--warmup W]";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      system: { type: "string" },
      queue: { type: "string" },
      calls: { type: "string" },
      "in-flight": { type: "string", default: "1,10" },
      warmup: { type: "string", default: "20" },
    },
  });
  const system = values.system as typeof SYSTEMS[number];
  const queue = values.queue;
  const calls = Number(values.calls);
  const warmup = Number(values.warmup);
  const inFlight = values["in-flight"].split(",").map(Number);
  if (
    !SYSTEMS.includes(system) || !queue || !Number.isInteger(calls) || calls < 1 ||
    !Number.isInteger(warmup) || warmup < 0 || !inFlight.every((k) => Number.isInteger(k) && k > 0)
  ) {
    console.error(USAGE);
    Deno.exit(2);
  }
  const caller = await { ours, floor, bullmq }[system](queue);
  try {
    await measure(caller, warmup, 1);
    const reply = caller.replyQueue();
    if (reply !== undefined) console.log(`bench reply ${reply}`);
    for (const k of inFlight) {
      const { rtts, elapsedMs } = await measure(caller, calls, k);
      console.log(`bench rtt ${k} ${elapsedMs} ${rtts.map((ms) => ms.toFixed(3)).join(",")}`);
    }
  } finally {
    await caller.close();
  }
}

if (import.meta.main) {
  await main();
}
