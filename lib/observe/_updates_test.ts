import assert from "node:assert/strict";
import { Updates } from "./_updates.ts";

Deno.test("updates are handed out in order, batch after batch", async () => {
  const updates = new Updates<string>();
  updates.push(["a1", "a2"]);
  updates.push(["b1"]);
  for (const item of ["a1", "a2", "b1"]) {
    assert.deepEqual(await updates.next(), { done: false, value: item });
  }
});

Deno.test("batches are taken as they come until the limit waits, then once read", async () => {
  const updates = new Updates<string>(1);
  const taken: string[] = [];
  updates.push(["a1", "a2"], () => taken.push("a"));
  assert.deepEqual(taken, ["a"], "nothing waited: taken at once");
  updates.push(["b1", "b2"], () => taken.push("b"));
  assert.deepEqual(taken, ["a"], "one batch waits: b is taken once read");
  for (const item of ["a1", "a2", "b1"]) {
    assert.deepEqual(await updates.next(), { done: false, value: item });
  }
  assert.deepEqual(taken, ["a"]);
  assert.deepEqual(await updates.next(), { done: false, value: "b2" });
  assert.deepEqual(taken, ["a", "b"]);
});

Deno.test("an empty batch is taken at once", () => {
  const updates = new Updates<string>();
  let taken = false;
  updates.push([], () => taken = true);
  assert.equal(taken, true);
});

Deno.test("the latest item replaces the one not handed out yet, in its place", async () => {
  const updates = new Updates<string>();
  updates.latest("state 1");
  updates.push(["event"]);
  updates.latest("state 2"); // state 1 was not read: state 2 takes its place
  assert.deepEqual(await updates.next(), { done: false, value: "state 2" });
  assert.deepEqual(await updates.next(), { done: false, value: "event" });
  updates.latest("state 3"); // state 2 was read: a new place
  assert.deepEqual(await updates.next(), { done: false, value: "state 3" });
});

Deno.test("a reader waits for the next update", async () => {
  const updates = new Updates<number>();
  const next = updates.next();
  updates.push([7]);
  assert.deepEqual(await next, { done: false, value: 7 });
});

Deno.test("end() drops what waits and ends every reader; later updates are ignored", async () => {
  const updates = new Updates<number>(0);
  const waiting = [updates.next(), updates.next()];
  updates.end();
  for (const next of waiting) assert.deepEqual(await next, { done: true, value: undefined });
  let taken = false;
  updates.push([1], () => taken = true);
  updates.latest(2);
  assert.deepEqual(await updates.next(), { done: true, value: undefined });
  assert.equal(taken, false, "nothing acked for updates never handed out");
});

Deno.test("fail() throws once what waits is handed out", async () => {
  const updates = new Updates<number>();
  updates.push([1]);
  updates.fail(new Error("gave up"));
  assert.deepEqual(await updates.next(), { done: false, value: 1 });
  await assert.rejects(updates.next(), /gave up/);
});
