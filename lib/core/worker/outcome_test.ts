import assert from "node:assert/strict";
import { consumeMessage, FakeChannel, microtasksDone } from "../../../testing/fake_channel.ts";
import type { ConsumeMessage } from "../../deps/amqplib.ts";
import { DELAY_LEVELS, DELAY_QUEUE_HEADER, delayRoute, RUN_AT_HEADER } from "../delays.ts";
import { isTaskEvent, MAX_REASON, type TaskEvent } from "../events.ts";
import { log } from "../log.ts";
import { AWAITED_HEADER } from "../task.ts";
import { AckBatcher } from "./acks.ts";
import type { Delivery, DeliveryFields } from "./delivery.ts";
import { ack, Outcomes, publishConfirmed } from "./outcome.ts";
import type { Session } from "./session.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

const fields: DeliveryFields = { taskId: "t1", seq: 1, attempt: 2, redelivered: false };

/**
 * The outcomes of worker "w1" on queue "q" (3 attempts, retries after 1 s doubling), and one
 * delivery on a session of fake channels. `order` tells in order the events emitted, the events
 * published before acks, and the acks and nacks; the test ends the turn (`endTurn()`).
 */
function setup(headers?: Record<string, unknown>) {
  const consume = new FakeChannel();
  const publish = new FakeChannel();
  const events: TaskEvent[] = [];
  const order: string[] = [];
  let turn: (() => void)[] = [];
  consume.onSettle = (s) =>
    order.push(s.op === "ack" ? "ack" : `nack${s.requeue ? " with requeue" : ""}`);
  const session: Session = {
    consume: consume.asChannel,
    publish: publish.asConfirmChannel,
    acks: new AckBatcher<ConsumeMessage>(consume, {
      prefetch: 10,
      beforeAcks: (awaited) => order.push(awaited ? "all events" : "listened events"),
      defer: (fn) => turn.push(fn),
    }),
    runs: new Set(),
    closed: false,
  };
  const message = consumeMessage({
    messageId: "t1",
    headers: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", ...headers },
  });
  session.acks.received(message);
  const delivery: Delivery = { session, message, fields: undefined, progress: undefined };
  const outcomes = new Outcomes({
    queue: "q",
    worker: "w1",
    maxAttempts: 3,
    retryDelayMs: 1_000,
    emit: (event) => {
      assert.ok(isTaskEvent(event), `${event.type} is a task event`);
      events.push(event);
      order.push(event.type);
    },
    logger: log("worker"),
  });
  const endTurn = () => {
    const fns = turn;
    turn = [];
    for (const fn of fns) fn();
  };
  return { consume, publish, session, message, delivery, outcomes, events, order, endTurn };
}

Deno.test(
  "a retry goes down the delays' ladder with the attempts so far, and is acked once confirmed",
  options,
  async () => {
    const { consume, publish, message, delivery, outcomes, events, order, endTurn } = setup({
      "x-delivery-count": 1,
    });
    const retrying = outcomes.retry(delivery, fields, "boom", 12, 2_000);
    assert.deepEqual(events, [{
      type: "task.failed",
      worker: "w1",
      at: events[0]?.at,
      ...fields,
      durationMs: 12,
      reason: "boom",
    }]);
    assert.ok(!Number.isNaN(Date.parse(events[0]!.at)));
    await microtasksDone();
    assert.equal(publish.declared.length, DELAY_LEVELS + 1, "the ladder's queues and unrouted");
    const route = delayRoute(2_000);
    const [retry] = publish.published;
    assert.equal(retry?.exchange, route.exchange);
    assert.equal(retry?.routingKey, route.routingKey);
    assert.equal(retry?.options.headers[DELAY_QUEUE_HEADER], "q", "delivered back to q");
    const runAt = Date.parse(retry?.options.headers[RUN_AT_HEADER]);
    assert.ok(Math.abs(runAt - (Date.now() + 2_000)) < 1_000, "its time: in 2 s");
    assert.deepEqual(retry?.content, message.content);
    assert.equal(retry?.options.persistent, true);
    assert.equal(retry?.options.messageId, "t1");
    assert.equal(retry?.options.headers["x-tareas-attempts"], 2);
    assert.equal(retry?.options.headers.traceparent, message.properties.headers?.traceparent);
    assert.equal(retry?.options.headers["x-delivery-count"], undefined, "a new hop counts anew");

    endTurn();
    assert.deepEqual(consume.settlements, [], "not acked before the broker has the retry");
    publish.confirm();
    await retrying;
    endTurn();
    assert.deepEqual(order, ["task.failed", "listened events", "ack"]);
  },
);

Deno.test("a session declares the delays' ladder once, whatever the delays", options, async () => {
  const { publish, delivery, outcomes } = setup();
  const first = outcomes.retry(delivery, fields, "boom", 1, 1_000);
  const second = outcomes.retry(delivery, fields, "boom", 1, 8_000);
  await microtasksDone();
  for (const published of publish.pending) publish.confirm(published);
  await Promise.all([first, second]);
  assert.equal(publish.declared.length, DELAY_LEVELS + 1);
  assert.equal(publish.published.length, 2);
});

Deno.test(
  "failed() retries with a doubling delay until maxAttempts, then dead-letters",
  options,
  async (t) => {
    for (
      const [attempt, route, where] of [
        [1, delayRoute(1_000).routingKey, "down the ladder for 1 s"],
        [2, delayRoute(2_000).routingKey, "down the ladder for 2 s"],
        [3, "q.dead", "to q.dead"],
      ] as const
    ) {
      await t.step(`attempt ${attempt} of 3 goes ${where}`, async () => {
        const { publish, delivery, outcomes, events } = setup();
        const failing = outcomes.failed(
          delivery,
          { ...fields, attempt },
          { attempt, returns: 0 },
          5,
          new Error("boom\nat handler.ts:1"),
        );
        await microtasksDone();
        assert.equal(publish.published.length, 1);
        assert.equal(publish.published[0]?.routingKey, route);
        publish.confirm();
        await failing;
        if (attempt < 3) {
          assert.deepEqual(events.map((e) => [e.type, e.reason]), [["task.failed", "boom"]]);
        } else {
          assert.deepEqual(events.map((e) => [e.type, e.reason]), [
            ["task.dead", "boom (after 3 attempts)"],
          ]);
          assert.equal(publish.published[0]?.options.headers["x-tareas-reason"], events[0]?.reason);
        }
      });
    }
    await t.step("a reason longer than an event carries is cut", async () => {
      const { publish, delivery, outcomes, events } = setup();
      const failing = outcomes.failed(
        delivery,
        fields,
        { attempt: 1, returns: 0 },
        5,
        new Error("x".repeat(10_000)),
      );
      await microtasksDone();
      publish.confirm();
      await failing;
      assert.ok(events[0]!.reason!.length <= MAX_REASON, `${events[0]!.reason!.length} characters`);
    });
  },
);

Deno.test(
  "a dead letter goes to <queue>.dead with its reason, then task.dead, then the ack",
  options,
  async () => {
    const { consume, publish, message, delivery, outcomes, events, order, endTurn } = setup();
    const dying = outcomes.deadLetter(delivery, fields, "Body is not JSON", 7);
    const [dead] = publish.published;
    assert.equal(dead?.routingKey, "q.dead");
    assert.deepEqual(dead?.content, message.content);
    const headers = dead?.options.headers;
    assert.equal(headers["x-tareas-reason"], "Body is not JSON");
    assert.equal(headers["x-tareas-attempts"], 2);
    assert.equal(headers["x-tareas-worker"], "w1");
    assert.ok(!Number.isNaN(Date.parse(headers["x-tareas-dead-at"])), headers["x-tareas-dead-at"]);
    assert.equal(events.length, 0, "no task.dead before the broker has the copy");
    endTurn();
    assert.deepEqual(consume.settlements, []);

    publish.confirm();
    await dying;
    endTurn();
    assert.deepEqual(events, [{
      type: "task.dead",
      worker: "w1",
      at: events[0]?.at,
      ...fields,
      durationMs: 7,
      reason: "Body is not JSON",
    }]);
    assert.deepEqual(order, ["task.dead", "listened events", "ack"]);
  },
);

Deno.test("a dead letter without a duration has none in its event", options, async () => {
  const { publish, delivery, outcomes, events } = setup();
  const dying = outcomes.deadLetter(delivery, fields, "Body is not JSON");
  publish.confirm();
  await dying;
  assert.equal("durationMs" in events[0]!, false);
});

Deno.test("the ack of a task someone waits for goes after all its events", options, async (t) => {
  for (
    const [what, headers, expected] of [
      ["awaited", { [AWAITED_HEADER]: true }, "all events"],
      ["a forged header that is not true", { [AWAITED_HEADER]: "true" }, "listened events"],
      ["not awaited", {}, "listened events"],
    ] as const
  ) {
    await t.step(what, async () => {
      const { publish, delivery, outcomes, order, endTurn } = setup(headers);
      const dying = outcomes.deadLetter(delivery, fields, "Body is not JSON");
      publish.confirm();
      await dying;
      endTurn();
      assert.deepEqual(order, ["task.dead", expected, "ack"]);
    });
  }
  await t.step("ack() of a completed task", () => {
    const { delivery, order, endTurn } = setup({ [AWAITED_HEADER]: true });
    ack(delivery);
    endTurn();
    assert.deepEqual(order, ["all events", "ack"]);
  });
});

Deno.test(
  "a copy the broker refuses: the delivery is rejected to the queue's dead-lettering",
  options,
  async (t) => {
    await t.step("a dead letter nacked by the broker", async () => {
      const { consume, publish, delivery, outcomes, events, order } = setup();
      const dying = outcomes.deadLetter(delivery, fields, "Body is not JSON");
      publish.refuse();
      await dying;
      assert.deepEqual(events.map((e) => [e.type, e.reason]), [
        ["task.dead", "Body is not JSON; could not copy it: message nacked"],
      ]);
      assert.deepEqual(order, ["task.dead", "all events", "nack"]);
      assert.deepEqual(consume.settlements, [
        { op: "nack", message: delivery.message, allUpTo: false, requeue: false },
      ]);
    });
    await t.step("a retry nacked by the broker", async () => {
      const { publish, delivery, outcomes, events, order } = setup();
      const retrying = outcomes.retry(delivery, fields, "boom", 3, 1_000);
      await microtasksDone();
      publish.refuse();
      await retrying;
      assert.deepEqual(events.map((e) => [e.type, e.reason]), [
        ["task.failed", "boom"],
        ["task.dead", "Could not schedule a retry: message nacked"],
      ]);
      assert.deepEqual(order, ["task.failed", "task.dead", "all events", "nack"]);
    });
    await t.step("a copy the client cannot encode", async () => {
      const { publish, delivery, outcomes, events, order } = setup();
      publish.failing = new Error(
        "Frame size of 70000 bytes exceeds the 65536 byte encoding buffer",
      );
      await outcomes.deadLetter(delivery, fields, "Body is not JSON");
      assert.match(
        events[0]!.reason!,
        /could not copy it: .*exceeds the 65536 byte encoding buffer/,
      );
      assert.deepEqual(order, ["task.dead", "all events", "nack"]);
    });
    await t.step("a reason too long for an event is cut", async () => {
      const { publish, delivery, outcomes, events } = setup();
      const dying = outcomes.deadLetter(delivery, fields, "y".repeat(10_000));
      publish.refuse();
      await dying;
      assert.equal(events[0]!.reason!.length, MAX_REASON);
    });
  },
);

Deno.test(
  "a delivery whose channel is gone is neither acked nor rejected, and not declared dead",
  options,
  async (t) => {
    await t.step("the channel closed with the dead letter unconfirmed", async () => {
      const { consume, publish, delivery, outcomes, events, endTurn } = setup();
      const dying = outcomes.deadLetter(delivery, fields, "Body is not JSON");
      publish.closeByBroker();
      await dying;
      endTurn();
      assert.deepEqual(events, []);
      assert.deepEqual(consume.settlements, []);
    });
    await t.step("the session closed, whatever the error", async () => {
      const { consume, publish, session, delivery, outcomes, events, endTurn } = setup();
      const dying = outcomes.deadLetter(delivery, fields, "Body is not JSON");
      session.closed = true;
      publish.refuse();
      await dying;
      endTurn();
      assert.deepEqual(events, []);
      assert.deepEqual(consume.settlements, []);
    });
    await t.step("the channel is closing and its close not heard yet", async () => {
      const { consume, publish, delivery, outcomes, events, endTurn } = setup();
      publish.failing = new Error("Channel closed");
      await outcomes.deadLetter(delivery, fields, "Body is not JSON");
      endTurn();
      assert.deepEqual(events, []);
      assert.deepEqual(consume.settlements, []);
    });
    await t.step("a retry: its task.failed is out, nothing else", async () => {
      const { consume, publish, session, delivery, outcomes, events, endTurn } = setup();
      const retrying = outcomes.retry(delivery, fields, "boom", 3, 1_000);
      await microtasksDone();
      session.closed = true;
      publish.closeByBroker();
      await retrying;
      endTurn();
      assert.deepEqual(events.map((e) => e.type), ["task.failed"]);
      assert.deepEqual(consume.settlements, []);
    });
  },
);

Deno.test("publishConfirmed settles with the broker's confirm", options, async () => {
  const channel = new FakeChannel();
  const content = consumeMessage().content;
  const confirmed = publishConfirmed(channel.asConfirmChannel, "q", content, {});
  channel.confirm();
  await confirmed;
  const refused = publishConfirmed(channel.asConfirmChannel, "q", content, {});
  channel.refuse();
  await assert.rejects(refused, /message nacked/);
  channel.failing = new Error("Channel closed");
  await assert.rejects(
    publishConfirmed(channel.asConfirmChannel, "q", content, {}),
    /Channel closed/,
    "a publish that throws rejects",
  );
});
