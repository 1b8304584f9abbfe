/**
 * The watcher against a real broker: one stream of updates (the queue's state, then the checked
 * events, each once), loops that may leave early, `close()` that ends them; the durable kind that
 * misses nothing while its connection is cut; the exclusive kind that waits for its queue and
 * follows it when it is deleted and declared again.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp, { type Channel } from "../lib/deps/amqplib.ts";
import { eventsExchange, type TareasEvent } from "../lib/core/events.ts";
import { deadQueue, declareTopology } from "../lib/core/topology.ts";
import { PREFETCH, type QueueWatcher, watchQueue, type WatchUpdate } from "../lib/observe/watch.ts";
import { proxyTarget, startProxy, throughProxy } from "../testing/proxy.ts";
import { brokerUrl, freshQueue, within } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** A worker's event as a worker publishes it: one message, its own id. */
function publish(channel: Channel, queue: string, body: unknown, id: string = crypto.randomUUID()) {
  const content = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  channel.publish(eventsExchange(queue), "worker.status", content, { messageId: id });
}

function status(worker: string, completed: number): TareasEvent {
  return { type: "worker.status", worker, at: new Date().toISOString(), completed };
}

/** The next update of `watcher`, or a failure naming `what`. */
async function next(watcher: QueueWatcher, what: string): Promise<WatchUpdate> {
  const result = await within(watcher[Symbol.asyncIterator]().next(), 10_000, what);
  assert.ok(!result.done, `the watcher ended while waiting for ${what}`);
  return result.value;
}

/** The next `n` events of `watcher`, skipping states. */
async function events(watcher: QueueWatcher, n: number): Promise<TareasEvent[]> {
  const got: TareasEvent[] = [];
  while (got.length < n) {
    const update = await next(watcher, `event ${got.length + 1} of ${n}`);
    if (update.kind === "event") got.push(update.event);
  }
  return got;
}

/** Asks `done` again after each answer until it holds; fails after 10 s naming `what`. */
async function until(done: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await done())) {
    if (Date.now() > deadline) assert.fail(`Timed out after 10000 ms waiting for ${what}`);
  }
}

/** A connection and channel of the test's own, and the queues it made, deleted at the end. */
async function open(queue: string) {
  const url = await brokerUrl();
  const connection = await amqp.connect(url);
  const channel = await connection.createConfirmChannel();
  return {
    url,
    channel,
    async [Symbol.asyncDispose]() {
      await channel.deleteQueue(queue);
      await channel.deleteQueue(deadQueue(queue));
      await channel.deleteExchange(eventsExchange(queue));
      await connection.close();
    },
  };
}

Deno.test({
  name: "a watcher yields the queue's state first, then each checked event once; a loop left " +
    "early keeps it, and close() ends a loop that waits",
  ...options,
  async fn() {
    const queue = freshQueue("watch");
    await using broker = await open(queue);
    await declareTopology(broker.channel, queue);
    const watcher = await watchQueue({ url: broker.url, queue, countsEveryMs: 0 });
    try {
      const first = await next(watcher, "the queue's state");
      assert.deepEqual(first, {
        kind: "queue",
        state: { declared: true, counts: { ready: 0, consumers: 0, dead: 0 }, listening: true },
      });

      const one = status("w1", 1);
      publish(broker.channel, queue, one, "m1");
      publish(broker.channel, queue, one, "m1"); // delivered again after a lost confirm
      publish(broker.channel, queue, "not JSON");
      publish(broker.channel, queue, { ...one, worker: 42 }); // does not fit the schema
      const [two, three] = [status("w2", 2), status("w3", 3)];
      publish(broker.channel, queue, [two, three]);
      for await (const update of watcher) {
        assert.deepEqual(update, { kind: "event", event: one });
        break;
      }
      // A second loop goes on where the first left (Deno.FsWatcher's return() would close it).
      assert.deepEqual(await events(watcher, 2), [two, three]);

      const waiting = watcher[Symbol.asyncIterator]().next();
      await watcher.close();
      assert.deepEqual(await within(waiting, 5_000, "the loop to end"), {
        done: true,
        value: undefined,
      });
      await watcher.close(); // idempotent
    } finally {
      await watcher.close();
    }
  },
});

Deno.test({
  name: "a durable watcher holds a bounded number of events for a reader that does not read, " +
    "misses none while its connection is cut, and takes each once",
  ...options,
  async fn() {
    const queue = freshQueue("watch-durable");
    await using broker = await open(queue);
    await using proxy = startProxy(proxyTarget(broker.url));
    await using watcher = await watchQueue({
      url: throughProxy(broker.url, proxy.port),
      queue,
      durable: true,
      countsEveryMs: 0,
    });
    // More than the watcher takes before it waits for its reader: the rest wait on the broker.
    const sent = Array.from({ length: 3 * PREFETCH }, (_, i) => status("w", i + 1));
    for (const event of sent) publish(broker.channel, queue, event);
    // All of them on the broker before counting: one still in flight would pass for one taken.
    await broker.channel.waitForConfirms();
    const subscription = watcher.subscription!;
    const ready = async () => (await broker.channel.checkQueue(subscription)).messageCount;
    // It acks PREFETCH messages as they come, then holds up to the broker's prefetch unacked.
    await until(
      async () => await ready() <= sent.length - 1.5 * PREFETCH,
      "the watcher to take more than PREFETCH",
    );
    // Round trips meanwhile (a watcher that took everything emptied the queue in less than one).
    let left = await ready();
    for (let i = 0; i < 20; i++) left = Math.min(left, await ready());
    // Tried with every message acked as it came: none was left.
    assert.ok(left > 0, "a reader that reads nothing leaves the rest on the broker");
    proxy.cut(); // those delivered and not acked: the broker delivers them again
    const more = status("w", sent.length + 1);
    publish(broker.channel, queue, more);
    // Tried with the message ids forgotten at each connection: the events held unacked when the
    // connection was cut came twice.
    assert.deepEqual(await events(watcher, sent.length + 1), [...sent, more]);
    const last = status("w", sent.length + 2);
    publish(broker.channel, queue, last);
    assert.deepEqual(await events(watcher, 1), [last], "nothing else in between");
  },
});

Deno.test({
  name: "an exclusive watcher waits for its queue, listens once it is declared, and listens " +
    "again to a new events exchange after the queue is deleted and declared again",
  ...options,
  async fn(t) {
    const queue = freshQueue("watch-follow");
    await using broker = await open(queue);
    await using watcher = await watchQueue({ url: broker.url, queue, countsEveryMs: 0 });

    await t.step("not declared: waiting, not listening, nothing declared", async () => {
      assert.equal(watcher.state.declared, false);
      assert.equal(watcher.state.listening, false);
      assert.match(watcher.state.error?.message ?? "", /does not exist: nothing has declared it/);
      const exchange = await withOwnChannel(
        broker.url,
        (ch) => ch.checkExchange(`${queue}.events`),
      );
      assert.equal(exchange, "missing", "the watcher declared no events exchange");
    });

    for (const round of ["declared", "declared again"]) {
      await t.step(`${round}: it listens`, async () => {
        await declareTopology(broker.channel, queue);
        const state = await watcher.refresh();
        assert.equal(state.declared, true);
        assert.equal(state.listening, true);
        const event = status(round, 1);
        publish(broker.channel, queue, event);
        assert.deepEqual(await events(watcher, 1), [event]);
      });
      await t.step(`${round}, then deleted with its events exchange: it stops`, async () => {
        await broker.channel.deleteQueue(queue);
        await broker.channel.deleteQueue(deadQueue(queue));
        await broker.channel.deleteExchange(eventsExchange(queue));
        const state = await watcher.refresh();
        assert.equal(state.declared, false);
        assert.equal(state.listening, false);
      });
    }
    await declareTopology(broker.channel, queue); // for the clean-up
  },
});

/** Runs `fn` on a channel of a connection of its own; "missing" when the broker says 404. */
async function withOwnChannel(
  url: string,
  fn: (channel: Channel) => Promise<unknown>,
): Promise<"found" | "missing"> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    channel.on("error", () => {});
    return await fn(channel).then(() => "found", () => "missing");
  } finally {
    await connection.close();
  }
}
