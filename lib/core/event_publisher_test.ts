import assert from "node:assert/strict";
import {
  type FakeChannel,
  FakeChannelModel,
  microtasksDone,
  type Published,
} from "../../testing/fake_channel.ts";
import { EventPublisher } from "./event_publisher.ts";
import { MAX_EVENT_BYTES, type TaskEvent } from "./events.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** A task event of task `seq`. */
function event(type: TaskEvent["type"], seq: number, extra: Partial<TaskEvent> = {}): TaskEvent {
  return {
    type,
    worker: "w1",
    at: "2026-01-01T00:00:00.000Z",
    taskId: `t${seq}`,
    seq,
    attempt: 1,
    redelivered: false,
    ...extra,
  };
}

/** The events of a message body: one event, or an array of them (a probe is an empty one). */
function parseEvents(content: Uint8Array): TaskEvent[] {
  const value = JSON.parse(new TextDecoder().decode(content));
  return Array.isArray(value) ? value : [value];
}

/** The events a message carries, in one line: `task.started t1,t2`, or `probe task.started`. */
function describe(published: Published): string {
  const events = parseEvents(published.content);
  if (events.length === 0) return `probe ${published.routingKey}`;
  for (const e of events) assert.equal(e.type, published.routingKey, "one type per message");
  return `${published.routingKey} ${events.map((e) => e.taskId).join(",")}`;
}

/**
 * A publisher of queue "q"'s events attached to a fake connection. The test stops it (its
 * ticker) before it ends: `await using` does.
 */
async function attached() {
  const model = new FakeChannelModel();
  const publisher = new EventPublisher("q");
  await publisher.attach(model.asChannelModel);
  const channel = model.channel;
  return {
    model,
    publisher,
    channel,
    sent: () => channel.published.map(describe),
    [Symbol.asyncDispose]: async () => {
      publisher.stop();
      await publisher.attach(undefined);
    },
  };
}

/** Makes `type` unheard on `channel`: a message of it comes back unrouted. */
function unheard(publisher: EventPublisher, channel: FakeChannel, type: TaskEvent["type"]): void {
  publisher.publish(event(type, 0));
  publisher.sendNow();
  channel.bounce(channel.published.at(-1));
}

Deno.test("events queued together go out as one message per type", options, async () => {
  await using p = await attached();
  p.publisher.publish(event("task.started", 1));
  p.publisher.publish(event("task.completed", 1));
  p.publisher.publish(event("task.started", 2));
  assert.deepEqual(p.sent(), [], "queued, not sent yet");
  p.publisher.sendNow();
  assert.deepEqual(p.sent(), ["task.started t1,t2", "task.completed t1"]);
  for (const published of p.channel.published) {
    assert.equal(published.exchange, "q.events");
    assert.equal(published.options.mandatory, true, "so that the broker says nobody listens");
    assert.equal(published.options.contentType, "application/json");
  }
  const [first, second] = p.channel.published;
  assert.ok(first?.options.messageId, "each message has an id for readers to drop duplicates");
  assert.notEqual(first?.options.messageId, second?.options.messageId);
});

Deno.test("queued events go out by themselves within the window", options, async () => {
  await using p = await attached();
  p.publisher.publish(event("task.completed", 1));
  p.publisher.publish(event("task.completed", 2));
  await p.channel.nextPublish();
  assert.deepEqual(p.sent(), ["task.completed t1,t2"]);
});

Deno.test("withdraw takes back an event that has not been sent", options, async () => {
  await using p = await attached();
  const started = event("task.started", 1);
  p.publisher.publish(started);
  p.publisher.publish(event("task.completed", 1));
  assert.equal(p.publisher.withdraw(started), true);
  p.publisher.sendNow();
  assert.deepEqual(p.sent(), ["task.completed t1"]);
  assert.equal(p.publisher.withdraw(started), false, "nothing left to take back");
});

Deno.test(
  "sendListened sends at once only while someone listens to a queued type",
  options,
  async () => {
    await using p = await attached();
    p.publisher.publish(event("task.completed", 1));
    p.publisher.sendListened();
    assert.deepEqual(p.sent(), ["task.completed t1"], "listened until a message comes back");
    p.channel.bounce(); // No queue is bound for task.completed.

    p.publisher.publish(event("task.completed", 2));
    p.publisher.sendListened();
    assert.deepEqual(p.sent(), ["task.completed t1"], "nobody listens: it waits");
    p.publisher.sendNow();
    assert.deepEqual(
      p.sent(),
      ["task.completed t1", "task.completed t2"],
      "sendNow sends whether or not someone listens",
    );
    p.channel.confirm(); // Routed: someone listens again.

    p.publisher.publish(event("task.completed", 3));
    p.publisher.sendListened();
    assert.deepEqual(p.sent().at(-1), "task.completed t3");
  },
);

Deno.test("held events of a type nobody listens to follow a routed probe", options, async () => {
  await using p = await attached();
  unheard(p.publisher, p.channel, "task.started");
  p.channel.published.length = 0;

  p.publisher.publish(event("task.completed", 1));
  p.publisher.publish(event("task.started", 1));
  p.publisher.sendListened();
  assert.deepEqual(p.sent(), ["task.completed t1", "probe task.started"]);
  const probe = p.channel.published[1]!;
  assert.equal(probe.content.toString(), "[]");
  assert.equal(probe.options.mandatory, true);

  p.channel.confirm(probe); // Routed: a listener bound meanwhile.
  assert.deepEqual(p.sent().slice(2), ["task.started t1"]);
  p.publisher.publish(event("task.started", 2));
  p.publisher.sendListened();
  assert.deepEqual(p.sent().slice(3), ["task.started t2"], "the type is listened to again");
});

Deno.test(
  "held events are dropped when their probe comes back or is refused",
  options,
  async (t) => {
    await using p = await attached();
    unheard(p.publisher, p.channel, "task.started");
    for (const [what, answer] of [["returned", "bounce"], ["refused", "refuse"]] as const) {
      await t.step(what, () => {
        p.channel.published.length = 0;
        p.publisher.publish(event("task.completed", 1));
        p.publisher.publish(event("task.started", 1));
        p.publisher.sendListened();
        assert.deepEqual(p.sent(), ["task.completed t1", "probe task.started"]);
        p.channel.confirm(p.channel.published[0]);
        p.channel[answer](p.channel.published[1]);
        p.publisher.sendNow();
        assert.deepEqual(p.sent(), ["task.completed t1", "probe task.started"], "nothing follows");
      });
    }
  },
);

Deno.test(
  "sendNow sends the events held for a probe, and the probe's answer adds nothing",
  options,
  async () => {
    await using p = await attached();
    unheard(p.publisher, p.channel, "task.started");
    p.channel.published.length = 0;
    p.publisher.publish(event("task.completed", 1));
    p.publisher.publish(event("task.started", 1));
    p.publisher.sendListened();
    p.publisher.sendNow(); // An ack of a task someone waits for: everything goes first.
    assert.deepEqual(p.sent(), ["task.completed t1", "probe task.started", "task.started t1"]);
    p.channel.confirm(p.channel.published[1]);
    assert.equal(p.channel.published.length, 3, "not sent twice");
  },
);

Deno.test(
  "events of a type nobody listens to are probed by themselves within a while",
  options,
  async () => {
    await using p = await attached();
    unheard(p.publisher, p.channel, "task.started");
    p.channel.published.length = 0;
    p.publisher.publish(event("task.started", 1));
    const probe = await p.channel.nextPublish();
    assert.equal(describe(probe), "probe task.started");
    p.channel.confirm(probe);
    assert.deepEqual(p.sent(), ["probe task.started", "task.started t1"]);
  },
);

Deno.test("flush() resolves once the broker has confirmed every event", options, async () => {
  await using p = await attached();
  await p.publisher.flush(); // Nothing to confirm: at once.
  p.publisher.publish(event("task.completed", 1));
  p.publisher.publish(event("task.failed", 1));
  let flushed = false;
  const flushing = p.publisher.flush().then(() => flushed = true);
  assert.deepEqual(p.sent(), ["task.completed t1", "task.failed t1"], "flush sends what is queued");
  p.channel.confirm();
  await microtasksDone();
  assert.equal(flushed, false, "one of two confirmed");
  p.channel.confirm();
  await flushing;
});

Deno.test("flush() gives up after its timeout when no confirm comes", options, async () => {
  await using p = await attached();
  p.publisher.publish(event("task.completed", 1));
  const since = performance.now();
  await p.publisher.flush(20);
  assert.ok(performance.now() - since >= 15, "it waited for the timeout");
  assert.equal(p.channel.pending.length, 1);
});

Deno.test("unconfirmed messages go out again on the next channel", options, async (t) => {
  await t.step("after attach() to a new connection", async () => {
    await using p = await attached();
    p.publisher.publish(event("task.completed", 1));
    p.publisher.sendNow();
    p.publisher.publish(event("task.completed", 2));
    p.publisher.sendNow();
    p.channel.confirm();
    const [, lost] = p.channel.published;
    const model = new FakeChannelModel();
    await p.publisher.attach(model.asChannelModel);
    assert.equal(p.channel.closed, true, "the old channel is closed");
    assert.deepEqual(model.channel.published.map(describe), ["task.completed t2"]);
    assert.equal(model.channel.published[0]?.options.messageId, lost?.options.messageId);
    const flushed = p.publisher.flush();
    model.channel.confirm();
    await flushed;
    await p.publisher.attach(undefined);
  });
  await t.step("events queued while detached go out once attached", async () => {
    const publisher = new EventPublisher("q");
    publisher.publish(event("task.completed", 1));
    publisher.sendNow();
    const model = new FakeChannelModel();
    await publisher.attach(model.asChannelModel);
    assert.deepEqual(model.channel.published.map(describe), ["task.completed t1"]);
    publisher.stop();
    await publisher.attach(undefined);
  });
  await t.step("after the broker refused one (on a new channel)", async () => {
    await using p = await attached();
    p.publisher.publish(event("task.completed", 1));
    p.publisher.sendNow();
    const reopened = p.model.nextChannel();
    p.channel.refuse();
    const channel = await reopened;
    await microtasksDone();
    assert.equal(p.channel.closed, true, "the channel that refused it is closed");
    assert.deepEqual(channel.published.map(describe), ["task.completed t1"]);
    channel.confirm();
  });
});

Deno.test("beyond 10,000 unconfirmed messages the oldest is dropped", options, async () => {
  await using p = await attached();
  for (let seq = 1; seq <= 10_001; seq++) {
    p.publisher.publish(event("task.completed", seq));
    p.publisher.sendNow();
  }
  const model = new FakeChannelModel();
  await p.publisher.attach(model.asChannelModel);
  const again = model.channel.published;
  assert.equal(again.length, 10_000);
  assert.equal(describe(again[0]!), "task.completed t2", "the first one is gone");
  const flushed = p.publisher.flush();
  for (const published of again) model.channel.confirm(published);
  await flushed;
  await p.publisher.attach(undefined);
});

Deno.test("a channel attached elsewhere meanwhile is closed unused", options, async () => {
  const model = new FakeChannelModel();
  const publisher = new EventPublisher("q");
  const attaching = publisher.attach(model.asChannelModel);
  await publisher.attach(undefined); // The connection went before its channel opened.
  await attaching;
  publisher.publish(event("task.completed", 1));
  publisher.sendNow();
  assert.equal(model.channel.closed, true);
  assert.deepEqual(model.channel.published, []);
  publisher.stop();
});

Deno.test(
  "a channel the broker closes under a live connection closes that connection",
  options,
  async (t) => {
    await t.step("after a channel error: the connection starts over", async () => {
      await using p = await attached();
      p.channel.closeByBroker(new Error("Channel closed by server: 406 (PRECONDITION-FAILED)"));
      assert.equal(p.model.closed, true);
    });
    await t.step("with its connection (no channel error): nothing to start over", async () => {
      await using p = await attached();
      p.channel.closeByBroker();
      assert.equal(p.model.closed, false);
    });
  },
);

Deno.test(
  "a batch larger than readers accept is split into messages they accept",
  options,
  async () => {
    await using p = await attached();
    const reason = "r".repeat(2_000);
    for (let seq = 1; seq <= 60; seq++) p.publisher.publish(event("task.failed", seq, { reason }));
    p.publisher.sendNow();
    assert.ok(p.channel.published.length > 1, "more than one message");
    const seqs: number[] = [];
    for (const published of p.channel.published) {
      assert.ok(published.content.byteLength <= MAX_EVENT_BYTES, `${published.content.byteLength}`);
      seqs.push(...(parseEvents(published.content)).map((e) => e.seq));
    }
    assert.deepEqual(seqs, Array.from({ length: 60 }, (_, i) => i + 1), "all, in order");
  },
);

// The timer that reopens the channel after a refused message (50 ms to 1 s) once outlived stop()
// and attach(undefined): a worker closed right after a refusal stayed alive until it fired.
// Fails on the sanitizer, not on an assertion.
Deno.test({
  name: "stop() and attach(undefined) leave no timer behind after a refused message",
  ...options,
  fn: async () => {
    await using p = await attached();
    p.publisher.publish(event("task.completed", 1));
    p.publisher.sendNow();
    p.channel.refuse();
  },
});
