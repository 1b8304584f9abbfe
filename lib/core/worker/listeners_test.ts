import assert from "node:assert/strict";
import { ListenedEventTarget } from "./listeners.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

Deno.test("a type is listened to while it has a listener", options, () => {
  const target = new ListenedEventTarget();
  const heard: string[] = [];
  const listener = (event: Event) => heard.push(event.type);
  assert.equal(target.listens("task.completed"), false);
  target.addEventListener("task.completed", listener);
  assert.equal(target.listens("task.completed"), true);
  assert.equal(target.listens("task.failed"), false, "only the type listened to");
  target.dispatchEvent(new Event("task.completed"));
  assert.deepEqual(heard, ["task.completed"], "it is still an EventTarget");
  target.removeEventListener("task.completed", listener);
  assert.equal(target.listens("task.completed"), false);
});

Deno.test("a type is listened to until its last listener is removed", options, () => {
  const target = new ListenedEventTarget();
  const first = () => {};
  const second = { handleEvent: () => {} };
  target.addEventListener("task.failed", first);
  target.addEventListener("task.failed", second);
  target.removeEventListener("task.failed", first);
  assert.equal(target.listens("task.failed"), true, "one listener left");
  target.removeEventListener("task.failed", second);
  assert.equal(target.listens("task.failed"), false);
});

// Removing a listener that is not registered (or registered with the other `capture`) once made
// listens() false while a listener remained: the listener silently heard nothing more.
Deno.test({
  name: "removing a listener that is not registered leaves the others heard",
  ...options,
  fn: () => {
    const target = new ListenedEventTarget();
    const heard: string[] = [];
    target.addEventListener("task.completed", (event) => heard.push(event.type));
    target.removeEventListener("task.completed", () => {}); // never added
    assert.equal(target.listens("task.completed"), true, "after removing a stranger");
    const captured = () => {};
    target.addEventListener("task.dead", captured, { capture: true });
    target.removeEventListener("task.dead", captured); // capture false: not the one registered
    assert.equal(target.listens("task.dead"), true, "after removing the other registration");
  },
});

// Listeners the EventTarget drops by itself (a `once` listener after its event, a listener whose
// `signal` aborted) and a listener added twice (registered once) once kept their type counted,
// so the worker went on building events nobody heard.
Deno.test({
  name: "listeners the EventTarget drops by itself are no longer counted",
  ...options,
  fn: () => {
    const target = new ListenedEventTarget();
    target.addEventListener("task.started", () => {}, { once: true });
    target.dispatchEvent(new Event("task.started"));
    assert.equal(target.listens("task.started"), false, "a once listener after its event");
    const controller = new AbortController();
    target.addEventListener("task.failed", () => {}, { signal: controller.signal });
    controller.abort();
    assert.equal(target.listens("task.failed"), false, "a listener whose signal aborted");
    const twice = () => {};
    target.addEventListener("task.dead", twice);
    target.addEventListener("task.dead", twice);
    target.removeEventListener("task.dead", twice);
    assert.equal(target.listens("task.dead"), false, "a listener added twice, removed once");
  },
});
