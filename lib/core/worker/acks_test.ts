import assert from "node:assert/strict";
import { FakeChannel, microtasksDone } from "../../../testing/fake_channel.ts";
import { AckBatcher } from "./acks.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** A delivery: the batcher only compares them by identity. */
interface Message {
  tag: number;
}

/**
 * A batcher on a fake channel, whose "end of the turn" the test decides (`endTurn()`), and a log
 * of what reached the channel and when the events were published (`events(awaited)`).
 */
function setup(prefetch = 10) {
  const channel = new FakeChannel();
  const log: string[] = [];
  const dropped: unknown[] = [];
  let turn: (() => void)[] = [];
  channel.onSettle = (s) => {
    const tag = (s.message as Message).tag;
    log.push(
      s.op === "ack"
        ? `ack ${tag}${s.allUpTo ? " and all before" : ""}`
        : `nack ${tag}${s.allUpTo ? " and all before" : ""}${s.requeue ? " requeue" : ""}`,
    );
  };
  const acks = new AckBatcher<Message>(channel, {
    prefetch,
    beforeAcks: (awaited) => log.push(`events(${awaited})`),
    onDropped: (error) => dropped.push(error),
    defer: (fn) => turn.push(fn),
  });
  const messages = Array.from({ length: 20 }, (_, i) => ({ tag: i + 1 }));
  const deliver = (count: number) => {
    const delivered = messages.slice(0, count);
    for (const message of delivered) acks.received(message);
    return delivered;
  };
  const endTurn = () => {
    const fns = turn;
    turn = [];
    for (const fn of fns) fn();
  };
  return { channel, acks, log, dropped, deliver, endTurn };
}

Deno.test("three deliveries finished in one turn get one ack covering them", options, () => {
  const { acks, log, deliver, endTurn } = setup();
  const [m1, m2, m3] = deliver(3);
  acks.ack(m1!, false);
  acks.ack(m3!, false);
  acks.ack(m2!, false);
  assert.deepEqual(log, [], "nothing goes out before the end of the turn");
  endTurn();
  assert.deepEqual(log, ["events(false)", "ack 3 and all before"]);
  assert.equal(acks.unsettled, 0);
});

Deno.test(
  "a gap: the run at the head gets one covering ack, those beyond it one each",
  options,
  () => {
    const { acks, log, deliver, endTurn } = setup();
    const [m1, m2, m3, m4, m5] = deliver(5);
    for (const message of [m1, m2, m4, m5]) acks.ack(message!, false);
    endTurn();
    assert.deepEqual(log, ["events(false)", "ack 2 and all before", "ack 4", "ack 5"]);
    assert.equal(acks.unsettled, 1, "the unfinished delivery is still held");

    log.length = 0;
    acks.ack(m3!, false);
    endTurn();
    assert.deepEqual(log, ["events(false)", "ack 3"], "the last one alone covers nothing else");
    assert.equal(acks.unsettled, 0);
  },
);

Deno.test("when the head is not finished, nothing is acked with allUpTo", options, () => {
  const { acks, log, deliver, endTurn } = setup();
  const [, m2, m3] = deliver(3);
  acks.ack(m2!, false);
  acks.ack(m3!, false);
  endTurn();
  assert.deepEqual(log, ["events(false)", "ack 2", "ack 3"]);
});

Deno.test("with the prefetch used up, an ack goes out at once", options, () => {
  const { acks, log, deliver, endTurn } = setup(3);
  const [m1, m2] = deliver(2);
  acks.ack(m1!, false);
  assert.deepEqual(log, [], "two of three unacked: it waits for the end of the turn");
  const m3 = { tag: 3 };
  acks.received(m3);
  acks.ack(m2!, false);
  assert.deepEqual(
    log,
    ["events(false)", "ack 2 and all before"],
    "three of three unacked: the broker sends nothing more until an ack, so it goes now",
  );
  endTurn(); // The flush scheduled by the first ack finds nothing left to ack.
  assert.deepEqual(log, ["events(false)", "ack 2 and all before", "events(false)"]);
  assert.equal(acks.unsettled, 1);
  acks.ack(m3, false);
  assert.equal(log.length, 3, "one unacked of three: back to waiting for the end of the turn");
  endTurn();
  assert.deepEqual(log.slice(3), ["events(false)", "ack 3"]);
});

Deno.test("an awaited delivery's events all go out before its ack", options, () => {
  const { acks, log, deliver, endTurn } = setup();
  const [m1, m2, m3] = deliver(3);
  acks.ack(m1!, false);
  acks.ack(m2!, true);
  endTurn();
  assert.deepEqual(log, ["events(true)", "ack 2 and all before"]);
  acks.ack(m3!, false);
  endTurn();
  assert.deepEqual(log.slice(2), ["events(false)", "ack 3"], "the next turn is not awaited");
});

Deno.test("reject nacks at once without requeue, after every queued event", options, () => {
  const { acks, log, deliver, endTurn } = setup();
  const [m1, m2, m3] = deliver(3);
  acks.ack(m2!, false);
  acks.reject(m1!);
  assert.deepEqual(log, ["events(true)", "nack 1"]);
  assert.equal(acks.unsettled, 2);
  endTurn();
  assert.deepEqual(
    log.slice(2),
    ["events(false)", "ack 2"],
    "the rejected delivery is no longer held: the finished one after it is the head",
  );
  acks.reject(m3!);
  assert.deepEqual(log.slice(4), ["events(true)", "nack 3"]);
  assert.equal(acks.unsettled, 0);
});

Deno.test(
  "after close() nothing is acked or rejected, and each attempt is reported",
  options,
  () => {
    const { channel, acks, log, dropped, deliver, endTurn } = setup();
    const [m1, m2, m3] = deliver(3);
    acks.ack(m1!, false);
    acks.close();
    assert.equal(acks.unsettled, 0, "the broker requeued what the channel held");
    endTurn();
    acks.ack(m2!, false);
    acks.reject(m3!);
    endTurn();
    acks.received({ tag: 4 });
    assert.equal(acks.unsettled, 0, "a delivery after the close is not held");
    assert.deepEqual(channel.settlements, []);
    assert.ok(!log.some((line) => line.startsWith("ack") || line.startsWith("nack")));
    assert.equal(dropped.length, 2, "the ack and the reject after the close are reported");
    for (const error of dropped) assert.match(String(error), /the broker requeued it/);
  },
);

Deno.test("a channel that throws is reported to onDropped, not thrown", options, async (t) => {
  await t.step("on an ack", () => {
    const { channel, acks, dropped, deliver, endTurn } = setup();
    const [m1, m2] = deliver(2);
    channel.failing = new Error("Channel closed");
    acks.ack(m1!, false);
    acks.ack(m2!, false);
    endTurn();
    assert.deepEqual(dropped, [channel.failing]);
  });
  await t.step("on a reject", () => {
    const { channel, acks, dropped, deliver } = setup();
    const [m1] = deliver(1);
    channel.failing = new Error("Channel closed");
    acks.reject(m1!);
    assert.deepEqual(dropped, [channel.failing]);
    assert.equal(acks.unsettled, 0);
  });
});

Deno.test("by default the acks of one event loop turn go out together", options, async () => {
  const channel = new FakeChannel();
  const acks = new AckBatcher<Message>(channel, { prefetch: 10, beforeAcks: () => {} });
  const [m1, m2, m3] = [{ tag: 1 }, { tag: 2 }, { tag: 3 }];
  for (const message of [m1, m2, m3]) acks.received(message);
  acks.ack(m1, false);
  await Promise.resolve(); // A handler whose promise resolved: still the same turn.
  acks.ack(m2, false);
  assert.deepEqual(channel.settlements, []);
  await microtasksDone();
  assert.deepEqual(channel.settlements, [{ op: "ack", message: m2, allUpTo: true }]);
  acks.ack(m3, false);
  await microtasksDone();
  assert.deepEqual(channel.settlements.at(-1), { op: "ack", message: m3, allUpTo: false });
});
