import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Channel } from "../deps/amqplib.ts";
import {
  encodeEvents,
  MAX_EVENT_BYTES,
  type TareasEvent,
  type TaskEvent,
  workerEvent,
} from "../core/events.ts";
import {
  consumeEvents,
  ignoredEvents,
  parseEvents,
  SeenMessages,
  subscribeEvents,
} from "./subscribe.ts";

const started: TareasEvent = {
  type: "task.started",
  worker: "w1",
  at: "2026-11-28T10:00:00.000Z",
  taskId: "t1",
  seq: 1,
  attempt: 1,
  redelivered: false,
};

const body = (value: unknown) => Buffer.from(JSON.stringify(value));

Deno.test("events survive encoding and parsing, one or several per message", () => {
  const status = workerEvent("worker.status", "w1", { inHand: 1, completed: 2, node: "n1" });
  assert.deepEqual(parseEvents(encodeEvents([started])), [started]);
  assert.deepEqual(parseEvents(encodeEvents([started, started])), [started, started]);
  assert.deepEqual(parseEvents(encodeEvents([status])), [status]);
});

Deno.test("fields outside the schema are dropped", () => {
  const [event] = parseEvents(body({ ...started, extra: "x".repeat(100), __proto__x: 1 }));
  assert.deepEqual(event, started);
});

Deno.test("bodies that do not fit the schema are ignored and counted", async (t) => {
  const cases: [string, unknown][] = [
    ["a completion without a task id", { ...started, type: "task.completed", taskId: undefined }],
    ["a start without a task id", { ...started, taskId: undefined }],
    ["an empty task id", { ...started, taskId: "" }],
    ["an unknown type", { ...started, type: "task.exploded" }],
    ["a worker that is not a string", { ...started, worker: { name: "w" } }],
    ["a date that is not one", { ...started, at: "lots" }],
    ["a string count", { type: "worker.status", worker: "w", at: started.at, inHand: "0lots0" }],
    ["a negative count", { type: "worker.status", worker: "w", at: started.at, completed: -1 }],
    ["a fractional attempt", { ...started, attempt: 1.5 }],
    ["attempt 0", { ...started, attempt: 0 }],
    ["a string redelivered", { ...started, redelivered: "no" }],
    ["a negative duration", { ...started, durationMs: -5 }],
    ["a reason that is an object", { ...started, reason: { toString: 1 } }],
    ["a 300-character worker name", { ...started, worker: "w".repeat(300) }],
    ["null", null],
    ["a number", 42],
  ];
  for (const [what, value] of cases) {
    await t.step(what, () => {
      const before = ignoredEvents.notAnEvent;
      assert.deepEqual(parseEvents(body(value)), []);
      assert.equal(ignoredEvents.notAnEvent, before + 1);
    });
  }
  await t.step("one bad entry in an array leaves the good ones", () => {
    assert.deepEqual(parseEvents(body([started, { type: "task.started" }, started])), [
      started,
      started,
    ]);
  });
  await t.step("not JSON", () => {
    const before = ignoredEvents.notJson;
    assert.deepEqual(parseEvents(Buffer.from("{nope")), []);
    assert.equal(ignoredEvents.notJson, before + 1);
  });
  await t.step("larger than the limit, unread", () => {
    const before = ignoredEvents.tooLarge;
    assert.deepEqual(parseEvents(Buffer.alloc(MAX_EVENT_BYTES + 1, 32)), []);
    assert.equal(ignoredEvents.tooLarge, before + 1);
  });
});

Deno.test("SeenMessages takes an id once, and forgets the oldest past its size", () => {
  const seen = new SeenMessages(2);
  assert.equal(seen.add("a"), true);
  assert.equal(seen.add("a"), false);
  assert.equal(seen.add("b"), true);
  assert.equal(seen.add("c"), true); // "a" is forgotten
  assert.equal(seen.add("b"), false);
  assert.equal(seen.add("a"), true);
});

/** Just enough of an amqplib channel for one subscription; records acks and the consume. */
function fakeChannel() {
  const fake = {
    acked: [] as unknown[],
    noAck: undefined as boolean | undefined,
    prefetched: undefined as number | undefined,
    deliver: (_message: unknown) => {},
    assertExchange: () => Promise.resolve({}),
    checkExchange: () => Promise.resolve({}),
    assertQueue: (name: string) => Promise.resolve({ queue: name || "amq.gen-1" }),
    bindQueue: () => Promise.resolve({}),
    prefetch: (count: number) => {
      fake.prefetched = count;
      return Promise.resolve();
    },
    consume: (
      _queue: string,
      onMessage: (message: unknown) => void,
      options: { noAck: boolean },
    ) => {
      fake.deliver = onMessage;
      fake.noAck = options.noAck;
      return Promise.resolve({ consumerTag: "c" });
    },
    ack: (message: unknown) => void fake.acked.push(message),
  };
  return fake;
}

function delivery(body: unknown, messageId: string) {
  return {
    content: body instanceof Buffer ? body : encodeEvents(body as TareasEvent[]),
    properties: { messageId },
  };
}

Deno.test("a subscription with a prefetch acks a message once its events are taken", async () => {
  const channel = fakeChannel();
  const received: [TareasEvent[], () => void][] = [];
  await consumeEvents(
    channel as unknown as Channel,
    "q",
    (events, taken) => received.push([events, taken]),
    {
      prefetch: 8,
    },
  );
  assert.equal(channel.noAck, false);
  assert.equal(channel.prefetched, 8);
  const first = delivery([started, started], "m1");
  channel.deliver(first);
  assert.equal(received.length, 1);
  assert.deepEqual(received[0]![0], [started, started]);
  assert.deepEqual(channel.acked, [], "not acked before it is taken");
  received[0]![1]();
  assert.deepEqual(channel.acked, [first]);

  const again = delivery([started], "m1"); // the same message delivered again
  const junk = delivery(Buffer.from("{nope"), "m2");
  channel.deliver(again);
  channel.deliver(junk);
  assert.equal(received.length, 1, "nothing to take");
  assert.deepEqual(channel.acked, [first, again, junk], "acked at once");
});

Deno.test("a server-named subscription without a prefetch takes no acks", async () => {
  const channel = fakeChannel();
  const events: TareasEvent[] = [];
  await subscribeEvents(channel as unknown as Channel, "q", (event) => events.push(event));
  assert.equal(channel.noAck, true);
  channel.deliver(delivery([started], "m1"));
  assert.deepEqual(events, [started]);
  assert.deepEqual(channel.acked, []);
});

Deno.test("a task event's name and progress are read, and checked like the rest", () => {
  const base = {
    type: "task.progress",
    worker: "w",
    at: "2026-01-01T00:00:00.000Z",
    taskId: "t",
    seq: 1,
    attempt: 1,
    redelivered: false,
  };
  const read = (fields: Record<string, unknown>) =>
    parseEvents(new TextEncoder().encode(JSON.stringify({ ...base, ...fields })));
  assert.deepEqual(read({ name: "resize", progress: 0.5 }), [{
    ...base,
    name: "resize",
    progress: 0.5,
  }]);
  assert.deepEqual((read({ progress: { page: 3, of: 10 } })[0] as TaskEvent).progress, {
    page: 3,
    of: 10,
  });
  // Tried: a forged progress out of range, an array, an object too large, a name too long.
  for (
    const forged of [{ progress: 2 }, { progress: [1] }, { progress: { x: "y".repeat(2_000) } }, {
      name: "n".repeat(201),
    }]
  ) {
    assert.deepEqual(read(forged), [], JSON.stringify(forged).slice(0, 60));
  }
});
