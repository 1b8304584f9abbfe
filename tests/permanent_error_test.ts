/**
 * Failing for good against the real broker: a handler that throws `PermanentError` (or the same
 * error from another copy of tareas) has its task dead-lettered at once, with the error's message
 * as the reason and no retry; a plain throw is still retried.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/core/events.ts";
import { PermanentError, TaskDeadError } from "../lib/core/errors.ts";
import { createWorker } from "../lib/core/worker/mod.ts";
import { Scenario, within } from "../testing/scenario.ts";
import { options, trackedProducer } from "./_calls.ts";

/** A permanent failure as another copy of tareas makes it: not this copy's class. */
class ForeignPermanentError extends Error {
  constructor(message: string) {
    super(message);
    Object.defineProperty(this, Symbol.for("tareas.permanent"), { value: true });
  }
}

type Kind = "permanent" | "foreign" | "plain";

Deno.test({
  name: "a handler throwing PermanentError has its task dead-lettered at once with the error's " +
    "message; a plain throw is retried",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const { url, queue } = scenario;
    const attempts = new Map<string, number[]>();
    const events: TaskEvent[] = [];
    // One task at a time, and the same retry delay for every first failure: a retry of the
    // permanent failures, published before the plain task's, would come back before it.
    await using worker = await createWorker<{ kind: Kind }>({
      url,
      queue,
      name: "strict",
      maxAttempts: 3,
      retryDelay: 200,
      handler: (task, context) => {
        attempts.set(task.id, [...attempts.get(task.id) ?? [], context.attempt]);
        switch (task.payload.kind) {
          case "permanent":
            throw new PermanentError("Not a PNG image: cat.gif");
          case "foreign":
            throw new ForeignPermanentError("Gone for good: the account was deleted");
          case "plain":
            if (context.attempt === 1) throw new Error("Timed out talking to the mail server");
            return "sent";
        }
      },
    });
    for (const type of ["task.completed", "task.failed", "task.dead"] as const) {
      worker.addEventListener(type, (event) => events.push(event.detail));
    }
    const dead = await scenario.collect();
    await using tracked = await trackedProducer(scenario);
    const { producer } = tracked;
    const ids = new Map<Kind, string>();

    await scenario.step(t, "a permanent failure, a foreign one, then a plain one", async () => {
      for (const kind of ["permanent", "foreign", "plain"] as const) {
        ids.set(kind, (await producer.enqueue({ kind })).id);
      }
    });

    await scenario.step(t, "the plain failure is retried and completes on attempt 2", async () => {
      const plain = ids.get("plain")!;
      await scenario.waitForEvent(
        () => events.some((e) => e.type === "task.completed" && e.taskId === plain),
        "the plain task to complete",
      );
      const failed = events.filter((e) => e.taskId === plain && e.type === "task.failed");
      assert.deepEqual(failed.map((e) => [e.attempt, e.reason]), [
        [1, "Timed out talking to the mail server"],
      ]);
      assert.deepEqual(attempts.get(plain), [1, 2]);
    });

    await scenario.step(t, "each permanent failure is dead at attempt 1, not retried", async () => {
      await dead.waitFor(2, "the two dead letters");
      const reasons = {
        permanent: "Not a PNG image: cat.gif",
        foreign: "Gone for good: the account was deleted",
      };
      for (const [kind, reason] of Object.entries(reasons)) {
        const id = ids.get(kind as Kind)!;
        const own = events.filter((e) => e.taskId === id);
        assert.deepEqual(
          own.map((e) => [e.type, e.attempt, e.reason]),
          [["task.dead", 1, reason]],
          `${kind}: one task.dead, no task.failed`,
        );
        assert.deepEqual(attempts.get(id), [1], `${kind}: its handler ran once`);
        const letter = dead.messages.find((m) => m.properties.messageId === id);
        assert.equal(letter?.properties.headers?.["x-tareas-reason"], reason);
        assert.equal(letter?.properties.headers?.["x-tareas-attempts"], 1);
      }
      assert.equal(await scenario.ready(), 0, "nothing left in the work queue");
    });

    await scenario.step(
      t,
      "calling a task that fails for good rejects with the reason",
      async () => {
        const id = crypto.randomUUID();
        const error = await within(
          producer.call({ kind: "permanent" }, { id }).then(
            () => assert.fail("the call resolved"),
            (error: unknown) => error,
          ),
          15_000,
          "the call to settle",
        );
        assert.ok(error instanceof TaskDeadError, `a TaskDeadError, not ${error}`);
        assert.equal(error.taskId, id);
        assert.equal(error.reason, "Not a PNG image: cat.gif");
        assert.deepEqual(attempts.get(id), [1], "its handler ran once");
      },
    );
    scenario.pass();
  },
});

Deno.test({
  name: "deno task work --handler: a module's PermanentError dead-letters its task at attempt 1",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const dead = await scenario.collect();
    await scenario.startWorker("cli", [
      ...["--handler", "tests/handlers/fails_for_good.ts", "--retry-delay", "0.1"],
    ]);
    await scenario.produce(["--count", "2", "--min", "0", "--max", "0"]);
    await scenario.waitForCompleted(1);
    const death = await scenario.waitForEvent(
      (e) => e.type === "task.dead",
      "task #1's task.dead",
    ) as TaskEvent;
    assert.equal(death.seq, 1);
    assert.equal(death.attempt, 1);
    assert.equal(death.reason, "Task #1 cannot succeed (attempt 1)");
    await dead.waitFor(1, "task #1's dead letter");
    assert.equal(
      dead.messages[0]!.properties.headers?.["x-tareas-reason"],
      "Task #1 cannot succeed (attempt 1)",
    );
    assert.equal(scenario.events.filter((e) => e.type === "task.failed").length, 0, "no retry");
    scenario.pass();
  },
});
